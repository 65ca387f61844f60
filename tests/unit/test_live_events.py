"""The change events of the live channel: the same shape local mode pushes, naming only tables."""

from __future__ import annotations

import io
import json

import pytest

from coexist.live.connections import ConnectionStore
from coexist.live.events import change_event, changed_tables, table_of
from coexist.live.fanout import Fanout
from local import websocket
from local.live import LocalManagement

STREAM = "arn:aws:dynamodb:eu-west-1:123456789012:table/coexist-dev-{}/stream/2026-11-30T15:00:00.000"


class Table:
    """The connections table's three calls, in memory."""

    def __init__(self):
        self.items = {}

    def put_item(self, Item):  # noqa: N803 - boto3's names
        self.items[Item["connection_id"]] = Item

    def delete_item(self, Key):  # noqa: N803
        self.items.pop(Key["connection_id"], None)

    def scan(self, **_):
        return {"Items": list(self.items.values())}


def test_local_mode_pushes_the_deployed_event_through_the_same_fanout_as_a_text_frame():
    table, management = Table(), LocalManagement()
    store = ConnectionStore(table)
    out = io.BytesIO()
    management.attach("open", websocket.Connection(io.BytesIO(), out))
    store.add("open", "ana", 0)
    store.add("went-away", "ben", 0)  # recorded, but its socket is gone (no $disconnect ran)

    delivery = Fanout(store, management).publish(change_event("coexist-ingest"))

    assert (delivery.sent, delivery.gone, delivery.failed) == (1, 1, 0)
    assert set(table.items) == {"open"}  # the gone one is forgotten, as API Gateway's 410 makes it
    data = out.getvalue()
    assert data[0] == 0x80 | websocket.TEXT
    local = json.loads(data[2:])
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
