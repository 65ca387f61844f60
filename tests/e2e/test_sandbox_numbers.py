"""Local mode's Meta sandbox knows the business's numbers: the ones configured in COEXIST_NUMBERS and
every one local mode has seen in a webhook, so replies from a replayed number are sent, not
refused with Meta's error 100 ("object does not exist")."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from local import graph_api
from tests.e2e.harness import wait_until

pytestmark = pytest.mark.e2e

OWN_NUMBER = "109876543210987"  # a business's own number: not one of the sandbox's defaults
DISPLAY = "15550001111"
WABA = "102290129340398"
CUSTOMER = "16505550777"  # no other e2e test writes to this chat


def customer_text(wamid: str) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": OWN_NUMBER},
        "contacts": [{"profile": {"name": "Lin"}, "wa_id": CUSTOMER}],
        "messages": [{"from": CUSTOMER, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": "hi"}}],
    }
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": value}]}]}).encode()


def test_a_reply_from_a_number_seen_only_in_a_webhook_is_sent(local_mode):
    numbers = {n["phone_number_id"] for n in local_mode.sandbox("GET", "/_sandbox/numbers").json()["numbers"]}
    assert OWN_NUMBER not in numbers  # nobody told the sandbox about it

    assert local_mode.post_webhook(customer_text("wamid.e2e-own-number-1")).status == 200
    chat = wait_until(lambda: local_mode.chat_id_of(OWN_NUMBER, CUSTOMER))
    sent = local_mode.request(
        "POST", f"/api/chats/{chat}/messages", json.dumps({"type": "text", "text": "Hello from our own number."}).encode(),
        {"Authorization": "Bearer e2e-api-token", "Content-Type": "application/json", "Accept": "application/json"},
    )
    assert sent.status == 202, sent.body
    message_id = sent.json()["id"]

    def settled():
        items = local_mode.api_get(f"/chats/{chat}/messages").json()["items"]
        found = next((m for m in items if m["id"] == message_id), None)
        return found if found and found["status"] not in ("queued", "sending") else None

    message = wait_until(settled, timeout=30)
    assert message["status"] != "failed", message.get("failure_reason")
    sandbox_messages = local_mode.sandbox("GET", "/_sandbox/messages").json()["messages"]
    assert any(m["phone_number_id"] == OWN_NUMBER and m["to"] == CUSTOMER for m in sandbox_messages)
    numbers = local_mode.sandbox("GET", "/_sandbox/numbers").json()["numbers"]
    [learned] = [n for n in numbers if n["phone_number_id"] == OWN_NUMBER]
    assert (learned["display_phone_number"], learned["waba_id"]) == (DISPLAY, WABA)
    # Its status webhooks come back to this message (Meta echoes the send's callback data).
    wait_until(lambda: next((m for m in local_mode.api_get(f"/chats/{chat}/messages").json()["items"]
                             if m["id"] == message_id and m["status"] == "read"), None), timeout=30)


def test_the_numbers_of_coexist_numbers_are_known_to_the_sandbox():
    environ = {
        "WHATSAPP_APP_SECRET": "s",
        "COEXIST_NUMBERS": json.dumps({OWN_NUMBER: {"throughput_mps": 10}, "109876543210988": {}}),
    }
    sandbox = graph_api.start("http://127.0.0.1:9/webhook", 0, environ=environ)
    try:
        with urllib.request.urlopen(f"{sandbox.url}/_sandbox/numbers", timeout=10) as reply:
            numbers = {n["phone_number_id"]: n for n in json.loads(reply.read())["numbers"]}
    finally:
        sandbox.stop()
    assert numbers[OWN_NUMBER]["throughput_mps"] == 10
    assert numbers["109876543210988"]["throughput_mps"] == 80  # Meta's default for a number not in coexistence
    assert environ["COEXIST_NUMBERS"] == json.dumps({OWN_NUMBER: {"throughput_mps": 10}, "109876543210988": {}})  # kept as given
