"""Local mode's outbound loop against its built-in Meta sandbox: an agent's reply leaves through
the outbound queue and the sender, reaches the sandbox, and the sandbox's signed status webhooks
come back through local mode's own webhook until the message reads as `read`."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.harness import wait_until

pytestmark = pytest.mark.e2e

NUMBER = "106540352242922"  # the sandbox's default (coexistence) number
DISPLAY = "15550783881"
WABA = "102290129340398"
CUSTOMER = "16505550199"  # no other e2e test writes to this chat


def customer_text(wamid: str) -> bytes:
    """A customer message sent just now, so the customer-service window is open."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": NUMBER},
        "contacts": [{"profile": {"name": "Grace"}, "wa_id": CUSTOMER}],
        "messages": [{"from": CUSTOMER, "id": wamid, "timestamp": str(int(time.time())), "type": "text", "text": {"body": "hello?"}}],
    }
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": value}]}]}).encode()


def test_local_mode_announces_its_meta_sandbox(local_mode):
    assert local_mode.meta_sandbox and local_mode.meta_sandbox.startswith("http://127.0.0.1:")
    assert f"Meta sandbox   {local_mode.meta_sandbox}" in local_mode.output()
    stats = local_mode.sandbox("GET", "/_sandbox/stats")
    assert stats.status == 200 and {"accepted", "errors", "statuses"} <= set(stats.json())


def test_templates_are_synced_from_the_sandbox_at_start(local_mode):
    reply = local_mode.api_get(f"/templates?waba_id={WABA}")

    assert reply.status == 200
    listed = {(t["name"], t["status"]) for t in reply.json()["items"]}
    assert {("hello_world", "APPROVED"), ("appointment_reminder", "APPROVED"), ("new_feature", "PENDING")} <= listed


def test_an_agent_reply_is_sent_through_the_sandbox_and_its_statuses_come_back(local_mode):
    assert local_mode.post_webhook(customer_text("wamid.e2e-outbound-customer-1")).status == 200
    wait_until(lambda: local_mode.api_get(f"/chats/{local_mode.chat_id_of(NUMBER, CUSTOMER)}").status == 200)

    sent = local_mode.request(
        "POST", f"/api/chats/{local_mode.chat_id_of(NUMBER, CUSTOMER)}/messages", json.dumps({"type": "text", "text": "We are on it."}).encode(),
        {"Authorization": "Bearer e2e-api-token", "Content-Type": "application/json", "Accept": "application/json"},
    )
    assert sent.status == 202, sent.body
    message_id = sent.json()["id"]  # Coexist's id; Meta's wamid is recorded when the send succeeds

    def our_wamid():
        items = local_mode.api_get(f"/chats/{local_mode.chat_id_of(NUMBER, CUSTOMER)}/messages").json()["items"]
        return next((m.get("wamid") for m in items if m["id"] == message_id), None)

    def delivered_to_sandbox(wamid: str):
        # The customer's message also started the bot, whose answers go to the same customer.
        messages = local_mode.sandbox("GET", "/_sandbox/messages").json()["messages"]
        return next((m for m in messages if m["id"] == wamid), None)

    wamid = wait_until(our_wamid, timeout=30)
    accepted = wait_until(lambda: delivered_to_sandbox(wamid), timeout=30)
    assert (accepted["phone_number_id"], accepted["to"], accepted["type"]) == (NUMBER, CUSTOMER, "text")

    def read_receipt():
        items = local_mode.api_get(f"/chats/{local_mode.chat_id_of(NUMBER, CUSTOMER)}/messages").json()["items"]
        return next((m for m in items if m["id"] == message_id and m["status"] == "read"), None)

    message = wait_until(read_receipt, timeout=30)
    assert message["direction"] == "outbound"
    assert message["pricing"] == {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    assert local_mode.sandbox("GET", "/_sandbox/stats").json()["statuses"]["failed"] == 0
