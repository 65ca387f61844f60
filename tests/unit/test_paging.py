"""List paging parameters of the read API."""

from __future__ import annotations

import pytest

from coexist.reads import CHATS_PAGE, MESSAGES_PAGE, BadRequest, decode_cursor, encode_cursor, page_size


def test_page_size_defaults_and_limits():
    assert page_size(None) == 50 and page_size("") == 50
    assert page_size("1") == 1 and page_size("200") == 200
    for bad in ("0", "201", "-3", "ten", "1.5"):
        with pytest.raises(BadRequest):
            page_size(bad)


def test_cursor_round_trip_and_binding_to_its_listing():
    key = {"phone_number_id": "1", "chat_id": "c" + "a" * 24, "last_message_at": 1700000000}
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, CHATS_PAGE, {"phone_number_id": "1"}) == key
    with pytest.raises(BadRequest):
        decode_cursor(cursor, CHATS_PAGE, {"phone_number_id": "other"})
    with pytest.raises(BadRequest):
        decode_cursor(cursor, MESSAGES_PAGE, {})
    for garbage in ("%%%", "bm90IGpzb24", "W10"):
        with pytest.raises(BadRequest):
            decode_cursor(garbage, CHATS_PAGE, {})
    assert encode_cursor(None) is None and decode_cursor(None, CHATS_PAGE, {}) is None


def test_a_cursor_with_a_wrongly_typed_value_is_refused_before_it_reaches_dynamodb():
    good = {"phone_number_id": "1", "chat_id": "c" + "a" * 24, "last_message_at": 1700000000}
    for field, value in (("last_message_at", "1700000000"), ("last_message_at", True), ("last_message_at", 1.5),
                         ("chat_id", 2), ("chat_id", None), ("phone_number_id", ["1"])):
        with pytest.raises(BadRequest, match="cursor"):
            decode_cursor(encode_cursor(good | {field: value}), CHATS_PAGE, {})
