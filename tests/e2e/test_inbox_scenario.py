"""A coexistence day in the life, over HTTP against local mode: payloads built here (not Meta's
examples), signed with the local secret, duplicated and delivered out of order — the way Meta's
at-least-once delivery does it."""

from __future__ import annotations

import json
import random

import pytest

from tests.e2e.harness import wait_until

pytestmark = pytest.mark.e2e

NUMBER = "409876543210987"
DISPLAY = "15557770000"
WABA = "880011223344556"
CUSTOMER = "447700900123"
T0 = 1_893_456_000  # 2030-01-01T00:00:00Z


def envelope(field: str, value: dict, time: int | None = None) -> bytes:
    entry = {"id": WABA, "changes": [{"field": field, "value": value}]}
    if time is not None:
        entry["time"] = time
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def metadata() -> dict:
    return {"messaging_product": "whatsapp", "metadata": {"display_phone_number": DISPLAY, "phone_number_id": NUMBER}}


def customer_text(wamid: str, at: int, body: str) -> bytes:
    return envelope("messages", {
        **metadata(),
        "contacts": [{"profile": {"name": "Ada Patient"}, "wa_id": CUSTOMER}],
        "messages": [{"from": CUSTOMER, "id": wamid, "timestamp": str(at), "type": "text", "text": {"body": body}}],
    })


def app_echo(wamid: str, at: int, body: str) -> bytes:
    return envelope("smb_message_echoes", {
        **metadata(),
        "message_echoes": [{"from": DISPLAY, "to": CUSTOMER, "id": wamid, "timestamp": str(at), "type": "text", "text": {"body": body}}],
    })


def status(wamid: str, state: str, at: int) -> bytes:
    item = {"id": wamid, "status": state, "timestamp": str(at), "recipient_id": CUSTOMER}
    if state == "sent":
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    return envelope("messages", {**metadata(), "statuses": [item]})


def history(chunk: int, progress: int, wamids: list[str]) -> bytes:
    messages = [
        {"from": CUSTOMER, "id": w, "timestamp": str(T0 - 86_400 * 30 + int(w[-1])), "type": "text", "text": {"body": f"old {w}"},
         "history_context": {"status": "READ"}}
        for w in wamids
    ]
    return envelope("history", {**metadata(), "history": [{"metadata": {"phase": 1, "chunk_order": chunk, "progress": progress},
                                                           "threads": [{"id": CUSTOMER, "messages": messages}]}]})


def account(event: str, at: int, **extra) -> bytes:
    return envelope("account_update", {"event": event, "waba_info": {"waba_id": WABA}, **extra}, time=at)


def test_duplicated_and_reordered_coexistence_traffic_settles_into_the_right_inbox(local_mode):
    deliveries = [
        account("PARTNER_ADDED", T0 - 100),
        history(2, 100, ["wamid.h3"]),
        history(1, 40, ["wamid.h1", "wamid.h2"]),
        customer_text("wamid.c1", T0, "I need to move my appointment"),
        app_echo("wamid.e1", T0 + 60, "Sure, which day suits you?"),
        status("wamid.e1", "read", T0 + 120),
        status("wamid.e1", "sent", T0 + 61),
        status("wamid.e1", "delivered", T0 + 90),
        customer_text("wamid.c2", T0 + 300, "Thursday please"),
        account("PARTNER_REMOVED", T0 + 900, disconnection_info={"reason": "PRIMARY_INACTIVITY", "initiated_by": "SYSTEM"}),
    ]
    deliveries += deliveries[:6]  # Meta retries
    random.Random(7).shuffle(deliveries)
    for body in deliveries:
        assert local_mode.post_webhook(body).status == 200

    def settled():
        reply = local_mode.api_get(f"/chats/{local_mode.chat_id_of(NUMBER, CUSTOMER)}/messages")
        if reply.status != 200:
            return None
        # The customer's first message arrives before the echo here, so the bot may answer it before
        # the person on the phone takes over (never after): the coexistence traffic is what settles.
        items = [m for m in reply.json()["items"] if m["source"] != "bot"]
        echo = next((m for m in items if m["id"] == "wamid.e1"), None)
        done = len(items) == 6 and echo and echo["status"] == "read" and echo["pricing"]
        return items if done else None

    messages = wait_until(settled, timeout=60)
    assert [m["id"] for m in messages] == ["wamid.h1", "wamid.h2", "wamid.h3", "wamid.c1", "wamid.e1", "wamid.c2"]
    by_id = {m["id"]: m for m in messages}
    assert {by_id[w]["source"] for w in ("wamid.h1", "wamid.h2", "wamid.h3")} == {"history"}
    assert (by_id["wamid.c1"]["source"], by_id["wamid.c1"]["direction"]) == ("customer", "inbound")
    assert (by_id["wamid.e1"]["source"], by_id["wamid.e1"]["direction"], by_id["wamid.e1"]["status"]) == ("business_app", "outbound", "read")
    assert by_id["wamid.e1"]["pricing"]["type"] == "free_customer_service"

    chat = local_mode.api_get(f"/chats/{local_mode.chat_id_of(NUMBER, CUSTOMER)}").json()
    assert chat["contact_name"] == "Ada Patient"
    assert chat["mode"] == "app"  # a person answered from the phone
    assert chat["window_expires_at"] == "2030-01-02T00:05:00Z"  # the latest customer message + 24 h; the echo does not count
    assert chat["last_message_at"] == "2030-01-01T00:05:00Z"

    listing = local_mode.api_get(f"/chats?phone_number_id={NUMBER}").json()
    assert [c["chat_id"] for c in listing["items"]] == [local_mode.chat_id_of(NUMBER, CUSTOMER)]

    number = wait_until(lambda: (n := local_mode.api_get(f"/numbers/{NUMBER}").json()) and n.get("coexistence_state") == "disconnected" and n)
    assert number["coexistence_reason"] == "PRIMARY_INACTIVITY"
    assert number["history_sync"]["progress"] == 100 and number["history_sync"]["chunks"] == ["1:1", "1:2"]
    assert number["last_app_activity_at"] == "2030-01-01T00:01:00Z"
