"""The change events of the live channel: the same shape local mode pushes, naming only tables."""

from __future__ import annotations

import io
import json

import pytest

from coexist.live.connections import ConnectionStore, Listener, numbers_from_context, numbers_to_context
from coexist.live.events import change_event, changed_numbers, changed_tables, table_of
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


class Numbers:
    """Where each streamed record's number is read back, counting the reads; `hidden` keys are of
    items no console shows."""

    def __init__(self, numbers: dict[str, str], hidden: frozenset[str] = frozenset()):
        self.numbers, self.asked, self.hidden = numbers, [], hidden

    @staticmethod
    def _key(keys: dict) -> str:
        """The one key value of a stream record's keys (DynamoDB JSON)."""
        return next(iter(next(iter(keys.values())).values()))

    def shown(self, table: str, keys: dict) -> bool:
        return self._key(keys) not in self.hidden

    def of(self, table: str, keys: dict) -> str | None:
        key = self._key(keys)
        self.asked.append((table, key))
        return self.numbers.get(key)


def record(table: str, key: str) -> dict:
    name = "chat_id" if table == "chats" else "id"
    return {"eventSourceARN": STREAM.format(table), "eventName": "MODIFY", "dynamodb": {"Keys": {name: {"S": key}}}}


def test_local_mode_pushes_the_deployed_event_through_the_same_fanout_as_a_text_frame():
    table, management = Table(), LocalManagement()
    store = ConnectionStore(table)
    out = io.BytesIO()
    management.attach("open", websocket.Connection(io.BytesIO(), out))
    store.add("open", "ana", 0, {"111"})
    store.add("went-away", "admin", 0, None)  # recorded, but its socket is gone (no $disconnect ran)

    delivery = Fanout(store, management, Numbers({"c1": "111", "m1": "111"})).push([record("messages", "m1"), record("chats", "c1")])

    assert (delivery.sent, delivery.gone, delivery.failed) == (2, 1, 0)  # the gone one is tried once
    assert set(table.items) == {"open"}  # and forgotten, as API Gateway's 410 makes it
    frames = [json.loads(payload) for payload in read_frames(out.getvalue())]
    assert [event["by"] for event in frames] == ["messages", "chats"]
    deployed = change_event("messages")
    assert all(set(deployed) == set(event) == {"type", "by", "at"} and event["type"] == "changed" for event in frames)


def read_frames(data: bytes) -> list[bytes]:
    payloads, at = [], 0
    while at < len(data):
        assert data[at] == 0x80 | websocket.TEXT and data[at + 1] < 126
        size = data[at + 1]
        payloads.append(data[at + 2: at + 2 + size])
        at += 2 + size
    return payloads


def test_a_change_reaches_only_the_consoles_that_may_see_its_number():
    table, management = Table(), LocalManagement()
    store = ConnectionStore(table)
    outs = {}
    for connection_id, numbers in (("ana", {"111"}), ("ben", {"222"}), ("admin", None), ("nobody", set())):
        outs[connection_id] = io.BytesIO()
        management.attach(connection_id, websocket.Connection(io.BytesIO(), outs[connection_id]))
        store.add(connection_id, connection_id, 0, numbers)
    numbers = Numbers({"c1": "111", "c2": "222", "m2": "222"})

    Fanout(store, management, numbers).push(
        [record("chats", "c1"), record("chats", "c2"), record("messages", "m2"), record("chats", "c1"), record("chats", "erased")])

    received = {cid: [json.loads(p)["by"] for p in read_frames(out.getvalue())] for cid, out in outs.items()}
    assert received == {"ana": ["chats"], "ben": ["chats", "messages"], "admin": ["chats", "chats", "messages", "chats"], "nobody": []}
    assert numbers.asked.count(("chats", "c1")) == 1  # a record's number is read once per batch


def test_who_receives_what():
    assert Listener("a", None).receives("111") and Listener("a", None).receives(None)  # an admin: everything
    assert Listener("a", frozenset({"111"})).receives("111")
    assert not Listener("a", frozenset({"111"})).receives("222")
    assert not Listener("a", frozenset({"111"})).receives(None)  # a record that is gone: only admins
    assert not Listener("a", frozenset()).receives("111")


def test_an_item_that_says_nothing_about_numbers_receives_nothing():
    table = Table()
    table.put_item(Item={"connection_id": "old", "user": "u"})  # as recorded before numbers were kept
    (listener,) = ConnectionStore(table).listeners()
    assert listener.numbers == frozenset() and not listener.receives("111")


@pytest.mark.parametrize("numbers", [None, frozenset(), frozenset({"111"}), frozenset({"222", "111"})])
def test_the_numbers_travel_through_the_authorizers_context_unchanged(numbers):
    assert numbers_from_context(numbers_to_context(numbers)) == numbers


def test_a_context_without_numbers_is_no_number_never_every_number():
    assert numbers_from_context(None) == frozenset() and numbers_from_context("") == frozenset()


def test_a_batch_names_each_changed_table_and_number_once_in_order():
    numbers = Numbers({"c1": "111", "m1": "111", "m2": "222"})
    batch = [record("messages", "m1"), record("chats", "c1"), record("messages", "m2"), record("messages", "m1")]
    assert changed_numbers(batch, numbers.of) == [("messages", "111"), ("chats", "111"), ("messages", "222")]


def test_whether_a_record_is_shown_is_asked_once_per_key_and_a_hidden_one_changes_nothing():
    numbers, asked = Numbers({"c1": "111", "m1": "111", "m2": "222"}), []

    def shown(table, keys):
        asked.append((table, json.dumps(keys, sort_keys=True)))
        return table != "chats"

    batch = [record("messages", "m1"), record("chats", "c1"), record("messages", "m1"), record("chats", "c1"), record("messages", "m2")]
    assert changed_numbers(batch, numbers.of, shown) == [("messages", "111"), ("messages", "222")]
    assert len(asked) == len(set(asked)) == 3  # m1, c1, m2: once each, however often a batch names them


def test_a_batch_names_each_changed_table_once_in_order():
    records = [{"eventSourceARN": STREAM.format(t)} for t in ("messages", "chats", "messages", "messages")]
    assert changed_tables(records) == ["messages", "chats"]
    assert changed_tables([]) == []


def test_a_stage_with_hyphens_still_names_the_table():
    assert table_of("arn:aws:dynamodb:eu-west-1:1:table/coexist-prod-eu-chats/stream/x") == "chats"


def test_not_a_stream_arn_is_a_typed_error():
    with pytest.raises(ValueError):
        table_of("arn:aws:sqs:eu-west-1:1:queue")


def test_an_item_no_console_shows_is_neither_read_back_nor_announced():
    table, management = Table(), LocalManagement()
    store = ConnectionStore(table)
    out = io.BytesIO()
    management.attach("admin", websocket.Connection(io.BytesIO(), out))
    store.add("admin", "admin", 0, None)
    numbers = Numbers({"c1": "111"}, hidden=frozenset({"connect#contact-1"}))

    delivery = Fanout(store, management, numbers).push([record("chats", "connect#contact-1"), record("chats", "c1")])

    assert delivery.sent == 1 and [json.loads(p)["by"] for p in read_frames(out.getvalue())] == ["chats"]
    assert numbers.asked == [("chats", "c1")]


def test_the_connect_contact_map_in_the_chats_table_is_hidden_from_consoles(monkeypatch):
    """`connect#<contact id>` items map a Connect contact to its chat: a write of one reached admins
    as a change of a chat without a number."""
    from coexist import wiring

    monkeypatch.setenv("CHATS_TABLE", "chats")
    monkeypatch.setenv("MESSAGES_TABLE", "messages")
    wiring.live_changed_numbers.cache_clear()
    try:
        numbers = wiring.live_changed_numbers()
        assert not numbers.shown("chats", {"chat_id": {"S": "connect#b8d1a7f4-contact"}})
        assert numbers.shown("chats", {"chat_id": {"S": "cabcdefghijklmnopqrstuvwx"}})
        assert numbers.shown("messages", {"id": {"S": "connect#not-a-map-here"}})
    finally:
        wiring.live_changed_numbers.cache_clear()
