"""List paging parameters of the read API."""

from __future__ import annotations

import pytest

from coexist.reads import BadRequest, decode_cursor, encode_cursor, page_size


def test_page_size_defaults_and_limits():
    assert page_size(None) == 50 and page_size("") == 50
    assert page_size("1") == 1 and page_size("200") == 200
    for bad in ("0", "201", "-3", "ten", "1.5"):
        with pytest.raises(BadRequest):
            page_size(bad)


def test_cursor_round_trip_and_binding_to_its_listing():
    key = {"phone_number_id": "1", "wa_id": "2", "last_message_at": 1700000000}
    cursor = encode_cursor(key)
    assert decode_cursor(cursor, set(key), {"phone_number_id": "1"}) == key
    with pytest.raises(BadRequest):
        decode_cursor(cursor, set(key), {"phone_number_id": "other"})
    with pytest.raises(BadRequest):
        decode_cursor(cursor, {"id", "chat_id", "position"}, {})
    for garbage in ("%%%", "bm90IGpzb24", "W10"):
        with pytest.raises(BadRequest):
            decode_cursor(garbage, set(key), {})
    assert encode_cursor(None) is None and decode_cursor(None, set(key), {}) is None
