"""Sending over HTTP in local mode, against the Meta sandbox: the policy's refusals, templates,
idempotency keys, a burst above the number's rate, Meta's transient errors and an expired token,
with the status webhooks landing on the right messages."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.harness import API_TOKEN, wait_until

pytestmark = pytest.mark.e2e

WABA = "102290129340398"
COEXISTENCE = ("106540352242922", "15550783881")  # 20 msg/s in the sandbox
REGULAR = ("106540352242923", "15550783882")  # 80 msg/s; used for the token failure (its circuit opens)
REMINDER = {"type": "template", "template": {"name": "appointment_reminder", "language": "en_US", "components": [
    {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "Tuesday 10:00"}]}]}}
SALE = {"type": "template", "template": {"name": "spring_sale", "language": "en_US", "components": [
    {"type": "body", "parameters": [{"type": "text", "text": "20%"}]}]}}


def customers(count: int) -> list[str]:
    return ["4477" + str(uuid.uuid4().int)[:8] for _ in range(count)]


def seed_chats(local, number: tuple[str, str], wa_ids: list[str]) -> list[str]:
    """Chats from imported history: they exist, their window is closed, no bot wakes up."""
    threads = [{"id": w, "messages": [{"from": w, "id": f"wamid.h{uuid.uuid4().hex}", "timestamp": str(int(time.time()) - 3 * 86400),
                                       "type": "text", "text": {"body": "old"}, "history_context": {"status": "READ"}}]} for w in wa_ids]
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": number[1], "phone_number_id": number[0]},
             "history": [{"metadata": {"phase": 1, "chunk_order": 1, "progress": 50}, "threads": threads}]}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "history", "value": value}]}]}).encode()
    assert local.post_webhook(body).status == 200
    # One lookup per customer in all: a chat found is not looked up again by a later poll, nor to
    # return its id (a busy local mode answers one in 50-170 ms, and a campaign seeds 194).
    found: dict[str, str] = {}

    def every_chat_exists() -> bool:
        for wa_id in wa_ids:
            if wa_id not in found:
                if not (chat := local.chat_id_of(number[0], wa_id)):
                    return False
                found[wa_id] = chat
        return True

    wait_until(every_chat_exists, timeout=30)
    return [found[w] for w in wa_ids]


def send(local, chat_id: str, body: dict, key: str | None = None):
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", "X-Agent-Id": "ana"}
    if key:
        headers["Idempotency-Key"] = key
    reply = local.request("POST", f"/api/chats/{chat_id}/messages", json.dumps(body).encode(), headers)
    return reply.status, reply.json()


def message(local, chat_id: str, message_id: str) -> dict:
    reply = local.api_get(f"/chats/{chat_id}/messages?limit=200")
    assert reply.status == 200, f"{reply.status} {reply.body[:500]!r}\n{local.output()[-4000:]}"
    items = reply.json()["items"]
    return next((m for m in items if m["id"] == message_id), {})


def sandbox_messages_to(local, wa_id: str) -> list[dict]:
    return [m for m in local.sandbox("GET", "/_sandbox/messages").json()["messages"] if m["to"] == wa_id]


def test_free_form_outside_the_window_is_refused_and_a_template_goes_out_and_is_read(local_mode):
    [chat] = seed_chats(local_mode, COEXISTENCE, customers(1))
    status, refusal = send(local_mode, chat, {"type": "text", "text": "Are you still there?"})
    assert (status, refusal["code"]) == (409, "window_closed")
    status, accepted = send(local_mode, chat, REMINDER)
    assert status == 202 and accepted["status"] == "queued"
    read = wait_until(lambda: (m := message(local_mode, chat, accepted["id"])).get("status") == "read" and m, timeout=30)
    assert read["wamid"].startswith("wamid.") and read["pricing"]["category"] == "utility"


def test_the_same_idempotency_key_reaches_meta_once(local_mode):
    [wa_id] = customers(1)
    [chat] = seed_chats(local_mode, COEXISTENCE, [wa_id])
    first = send(local_mode, chat, REMINDER, key="reminder-123")
    second = send(local_mode, chat, REMINDER, key="reminder-123")
    assert first[0] == second[0] == 202 and first[1]["id"] == second[1]["id"]
    wait_until(lambda: message(local_mode, chat, first[1]["id"]).get("status") == "read", timeout=30)
    time.sleep(1)
    assert len(sandbox_messages_to(local_mode, wa_id)) == 1


def grant_consent(local, chat_id: str, purpose: str = "marketing") -> None:
    """An agent records the customer's consent to `purpose` (marketing, reminders)."""
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", "X-Agent-Id": "ana"}
    body = json.dumps({"purpose": purpose, "state": "granted", "note": "opted in on the website"}).encode()
    reply = local.request("PUT", f"/api/contacts/{chat_id}/consent", body, headers)
    assert reply.status == 200, reply.body[:500]


def test_an_opted_out_customer_gets_no_marketing(local_mode):
    [wa_id] = customers(1)
    [chat] = seed_chats(local_mode, COEXISTENCE, [wa_id])
    grant_consent(local_mode, chat)  # marketing needs the customer's consent; Meta then says they stopped
    local_mode.sandbox("POST", "/_sandbox/faults", {"recipient": wa_id, "code": 131050, "times": 1})
    status, first = send(local_mode, chat, SALE)
    assert status == 202
    failed = wait_until(lambda: (m := message(local_mode, chat, first["id"])).get("status") == "failed" and m, timeout=30)
    assert failed["errors"][0]["code"] == 131050
    status, refusal = send(local_mode, chat, SALE)  # Meta told us: the opt-out is recorded
    assert (status, refusal["code"]) == (409, "opted_out")
    assert send(local_mode, chat, REMINDER)[0] == 202  # utility is still fine


def test_a_burst_above_the_numbers_rate_is_paced_and_nothing_is_lost(local_mode):
    wa_ids = customers(30)  # more than the coexistence number's 20 msg/s, all at once
    chats = seed_chats(local_mode, COEXISTENCE, wa_ids)
    before = local_mode.sandbox("GET", "/_sandbox/stats").json()["errors"]
    ids = [send(local_mode, c, REMINDER)[1]["id"] for c in chats]
    wait_until(lambda: all(message(local_mode, c, i).get("status") in ("sent", "delivered", "read") for c, i in zip(chats, ids)), timeout=90)
    after = local_mode.sandbox("GET", "/_sandbox/stats").json()["errors"]
    assert after.get("130429", 0) == before.get("130429", 0)
    assert after.get("131056", 0) == before.get("131056", 0)
    calls = sorted(m["received_at"] for w in wa_ids for m in sandbox_messages_to(local_mode, w))
    assert len(calls) == 30
    assert all(b - a > 1.0 for a, b in zip(calls, calls[20:]))  # never 21 within one second


def test_transient_meta_errors_are_retried_until_sent(local_mode):
    [wa_id] = customers(1)
    [chat] = seed_chats(local_mode, COEXISTENCE, [wa_id])
    local_mode.sandbox("POST", "/_sandbox/faults", {"recipient": wa_id, "code": 131000, "times": 2})
    status, accepted = send(local_mode, chat, REMINDER)
    assert status == 202
    wait_until(lambda: message(local_mode, chat, accepted["id"]).get("status") in ("sent", "delivered", "read"), timeout=60)


def test_an_expired_token_stops_the_number_instead_of_burning_its_queue(local_mode):
    wa_ids = customers(3)
    chats = seed_chats(local_mode, REGULAR, wa_ids)
    local_mode.sandbox("POST", "/_sandbox/faults", {"recipient": wa_ids[0], "code": 190, "times": 1})
    ids = [send(local_mode, c, REMINDER)[1]["id"] for c in chats]
    time.sleep(4)
    calls = [m for w in wa_ids for m in sandbox_messages_to(local_mode, w)]
    statuses = [message(local_mode, c, i).get("status") for c, i in zip(chats, ids)]
    # The first send met the expired token: the number's circuit opened and the rest wait, unsent.
    assert statuses.count("queued") >= 2 and len(calls) <= 1
