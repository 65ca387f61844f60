"""Conversations over HTTP in local mode: the bot answers; the bot escalates to an agent who
accepts, replies and closes; nobody accepts; the business answers from the phone app mid-bot.
Each scenario is its own customer of one local-mode process with short workflow timeouts."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.harness import API_TOKEN, LocalMode, start_local_mode, wait_until

pytestmark = pytest.mark.e2e

NUMBER = "106540352242922"  # the sandbox's coexistence number
DISPLAY = "15550783881"
WABA = "102290129340398"
# Short, but with room for a loaded machine: an agent accepts within the offer, the silence after a
# phone-app reply is checked inside the cool-down.
FAST = {"takeover_cool_down_s": 8, "accept_timeout_s": 6, "assign_retry_s": 1, "max_assign_attempts": 2, "survey_timeout_s": 60}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with start_local_mode({"COEXIST_CONVERSATION": json.dumps(FAST)}) as running:
        yield running


def customer() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def envelope(field: str, value: dict) -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": DISPLAY, "phone_number_id": NUMBER}, **value}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": field, "value": value}]}]}).encode()


def customer_says(local: LocalMode, wa_id: str, text: str | None = None, button: tuple[str, str] | None = None) -> None:
    message = {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time()))}
    if button:
        message.update({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": button[0], "title": button[1]}}})
    else:
        message.update({"type": "text", "text": {"body": text}})
    body = envelope("messages", {"contacts": [{"profile": {"name": "E2E Customer"}, "wa_id": wa_id}], "messages": [message]})
    assert local.post_webhook(body).status == 200


def phone_app_says(local: LocalMode, wa_id: str, text: str) -> None:
    echo = {"from": DISPLAY, "to": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    assert local.post_webhook(envelope("smb_message_echoes", {"message_echoes": [echo]})).status == 200


def call(local: LocalMode, method: str, path: str, agent: str | None = None, body: dict | None = None):
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    if agent:
        headers["X-Agent-Id"] = agent
    reply = local.request(method, "/api" + path, json.dumps(body).encode() if body is not None else None, headers)
    return reply.status, reply.json()


def chat_id(local: LocalMode, wa_id: str) -> str:
    return local.chat_id_of(NUMBER, wa_id)


def chat(local: LocalMode, wa_id: str) -> dict:
    status, body = call(local, "GET", f"/chats/{chat_id(local, wa_id)}")
    return body if status == 200 else {}


def messages(local: LocalMode, wa_id: str) -> list[dict]:
    status, body = call(local, "GET", f"/chats/{chat_id(local, wa_id)}/messages?limit=200")
    return body["items"] if status == 200 else []


def from_bot(local: LocalMode, wa_id: str) -> list[dict]:
    return [m for m in messages(local, wa_id) if m["source"] == "bot"]


def test_the_bot_answers_resolves_and_asks_for_a_score(local):
    wa_id = customer()
    customer_says(local, wa_id, "What are your opening hours?")
    wait_until(lambda: chat(local, wa_id).get("waiting_for") == "customer", timeout=30)
    answer = from_bot(local, wa_id)
    assert answer and chat(local, wa_id)["bot_intent"] == "opening_hours"
    # The bot's replies really went out through the sender to the (sandbox) Cloud API.
    wait_until(lambda: all(m["status"] in ("accepted", "sent", "delivered", "read") for m in from_bot(local, wa_id)), timeout=30)
    customer_says(local, wa_id, "thanks, bye")
    wait_until(lambda: chat(local, wa_id).get("waiting_for") == "survey", timeout=30)
    customer_says(local, wa_id, button=("csat_3", "😊 Great"))
    view = wait_until(lambda: (c := chat(local, wa_id)).get("satisfaction_score") == 3 and c, timeout=30)
    assert view["mode"] == "closed" and view["closed_at"]


def test_escalation_to_an_agent_who_accepts_replies_and_closes(local):
    wa_id = customer()
    assert call(local, "PUT", "/agents/ana/status", body={"status": "available"})[0] == 200
    try:
        customer_says(local, wa_id, "I want to talk to a real person")
        wait_until(lambda: chat(local, wa_id).get("offered_to") == "ana", timeout=30)
        status, view = call(local, "POST", f"/chats/{chat_id(local, wa_id)}/accept", agent="ana")
        assert status == 200
        wait_until(lambda: chat(local, wa_id).get("waiting_for") == "agent", timeout=30)
        status, sent = call(local, "POST", f"/chats/{chat_id(local, wa_id)}/messages", agent="ana", body={"type": "text", "text": "Hi, Ana here."})
        assert status == 202
        wait_until(lambda: next((m for m in messages(local, wa_id) if m["id"] == sent["id"]), {}).get("status") == "read", timeout=30)
        view = chat(local, wa_id)
        assert (view["mode"], view["assignee"]) == ("agent", "ana")
        assert view["queued_at"] and view["assigned_at"] and view["first_human_reply_at"]
        assert call(local, "POST", f"/chats/{chat_id(local, wa_id)}/close", agent="ana")[0] == 200
        wait_until(lambda: chat(local, wa_id).get("mode") == "closed", timeout=30)
    finally:
        call(local, "PUT", "/agents/ana/status", body={"status": "away"})


def test_nobody_accepts_so_the_customer_is_told_and_the_chat_stays_queued(local):
    wa_id = customer()
    assert call(local, "PUT", "/agents/ben/status", body={"status": "available"})[0] == 200
    try:
        customer_says(local, wa_id, "agent please")
        wait_until(lambda: chat(local, wa_id).get("offered_to") == "ben", timeout=30)
        view = wait_until(lambda: (c := chat(local, wa_id)).get("conversation_state") == "ended" and c, timeout=40)
        assert view["mode"] == "queued" and view["offered_to"] is None
        assert "busy" in (from_bot(local, wa_id)[-1]["text"] or "")
    finally:
        call(local, "PUT", "/agents/ben/status", body={"status": "away"})


def test_the_phone_app_answers_mid_bot_and_the_bot_goes_quiet(local):
    wa_id = customer()
    customer_says(local, wa_id, "hello")
    wait_until(lambda: chat(local, wa_id).get("waiting_for") == "customer", timeout=30)
    answered = len(from_bot(local, wa_id))
    phone_app_says(local, wa_id, "Hi, it's Maria at the front desk")
    wait_until(lambda: chat(local, wa_id).get("mode") == "app", timeout=30)
    customer_says(local, wa_id, "where can I park?")
    time.sleep(1.5)
    assert len(from_bot(local, wa_id)) == answered  # the bot never answers over a human
    view = chat(local, wa_id)
    assert (view["takeover_by"], view["mode"]) == ("app", "app")
