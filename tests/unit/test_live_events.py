"""The change events of the live channel: the same shape as local mode's, naming only tables."""

from __future__ import annotations

import pytest

from coexist.live.events import change_event, changed_tables, table_of
from local.live import ChangeFeed

STREAM = "arn:aws:dynamodb:eu-west-1:123456789012:table/coexist-dev-{}/stream/2026-11-30T15:00:00.000"


def test_the_deployed_event_has_the_shape_local_mode_streams():
    feed = ChangeFeed()
    listener = feed.subscribe()
    feed.publish("ingest")
    local = listener.get_nowait()
    deployed = change_event("messages")
    assert set(deployed) == set(local) == {"type", "by", "at"}
    assert deployed["type"] == local["type"] == "changed"


def test_a_batch_names_each_changed_table_once_in_order():
    records = [{"eventSourceARN": STREAM.format(t)} for t in ("messages", "chats", "messages", "messages")]
    assert changed_tables(records) == ["messages", "chats"]
    assert changed_tables([]) == []


def test_a_stage_with_hyphens_still_names_the_table():
    assert table_of("arn:aws:dynamodb:eu-west-1:1:table/coexist-prod-eu-chats/stream/x") == "chats"


def test_not_a_stream_arn_is_a_typed_error():
    with pytest.raises(ValueError):
        table_of("arn:aws:sqs:eu-west-1:1:queue")
