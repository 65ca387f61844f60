"""Domain rules: delivery status order, the customer-service window, coexistence state."""

from __future__ import annotations

import pytest

from coexist.domain import coexistence, delivery, window


def test_status_order_is_queued_sent_delivered_read_played():
    order = ["queued", "sent", "delivered", "read", "played"]
    ranks = [delivery.rank(s) for s in order]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


def test_failed_supersedes_sent_but_not_proof_of_delivery():
    assert delivery.rank("sent") < delivery.rank("failed") < delivery.rank("delivered")


def test_unknown_status_has_no_rank():
    assert delivery.rank("deleted") is None


@pytest.mark.parametrize("raw, status", [("READ", "read"), ("DELIVERED", "delivered"), ("PLAYED", "played"), ("ERROR", "failed"), (None, None)])
def test_history_status_mapping(raw, status):
    assert delivery.history_status(raw) == status


def test_window_is_24h_from_the_latest_customer_message():
    assert window.window_expires_at(None) is None
    assert window.window_expires_at(1_000) == 1_000 + 86_400
    assert window.is_open(1_000, now=1_000 + 86_399)
    assert not window.is_open(1_000, now=1_000 + 86_400)
    assert not window.is_open(None, now=0)


def test_system_messages_do_not_open_the_window():
    assert window.opens_window("text") and window.opens_window("unsupported")
    assert not window.opens_window("system")


def test_coexistence_state_is_the_newest_of_number_and_account():
    number = {"state": coexistence.CONNECTED, "event_time": 200}
    account = {"state": coexistence.DISCONNECTED, "event_time": 100, "reason": "PRIMARY_INACTIVITY"}
    assert coexistence.current_state(number, account, False)["state"] == coexistence.CONNECTED
    account["event_time"] = 300
    assert coexistence.current_state(number, account, False)["reason"] == "PRIMARY_INACTIVITY"
    assert coexistence.current_state(None, None, True)["state"] == coexistence.CONNECTED
    assert coexistence.current_state(None, None, False)["state"] == coexistence.UNKNOWN


def test_events_that_do_not_change_the_connection_have_no_state():
    assert coexistence.state_after("PARTNER_REMOVED") == coexistence.DISCONNECTED
    assert coexistence.state_after("ACCOUNT_OFFBOARDED") == coexistence.OFFBOARDED
    assert coexistence.state_after("VOLUME_BASED_PRICING_TIER_UPDATE") is None
