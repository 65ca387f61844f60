"""Customers by any identifier, over HTTP in local mode, with Meta's documented BSUID payloads
(tests/fixtures/meta/bsuid): a customer who writes first by BSUID only, then in a webhook carrying
both identifiers, is one chat with one window and one conversation; a number change keeps the chat;
a customer known only by BSUID gets a reply through the Meta sandbox and its statuses come back;
no chat id, URL or log line holds a phone number."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.harness import API_TOKEN, FIXTURES, LocalMode, wait_until

pytestmark = pytest.mark.e2e

NUMBER = "106540352242922"


def customer() -> tuple[str, str]:
    """A fresh phone number and BSUID (Meta's format: country, a dot, alphanumerics)."""
    return "1555" + str(uuid.uuid4().int)[:7], "US.E2E" + uuid.uuid4().hex.upper()


def payload(name: str, **values) -> bytes:
    """One of Meta's BSUID examples with this test's customer, ids and times in it."""
    text = (FIXTURES / "bsuid" / name).read_text()
    for placeholder, value in {
        "16505551234": values.get("phone", ""), "12195555358": values.get("new_phone", ""),
        "US.13491208655302741918": values.get("bsuid", ""), "US.88812345678901234567": values.get("new_bsuid", ""),
    }.items():
        text = text.replace(placeholder, value)
    document = json.loads(text)
    value = document["entry"][0]["changes"][0]["value"]
    for item in value.get("messages", []) + value.get("statuses", []):
        item["id"] = values.get("wamid") or f"wamid.{uuid.uuid4().hex}"
        item["timestamp"] = str(int(time.time()))
    return json.dumps(document).encode()


def call(local: LocalMode, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", "X-Agent-Id": "ana"}
    reply = local.request(method, "/api" + path, json.dumps(body).encode() if body is not None else None, headers)
    return reply.status, reply.json()


def messages(local: LocalMode, chat_id: str) -> list[dict]:
    status, body = call(local, "GET", f"/chats/{chat_id}/messages?limit=200")
    return body["items"] if status == 200 else []


def test_bsuid_first_then_both_identifiers_is_one_chat_window_and_conversation(local_mode):
    phone, bsuid = customer()
    assert local_mode.post_webhook(payload("messages_username_no_phone.json", bsuid=bsuid, wamid="wamid.e2e-bsuid-1")).status == 200
    chat_id = wait_until(lambda: local_mode.chat_id_of(NUMBER, user_id=bsuid), timeout=30)
    first = wait_until(lambda: (c := call(local_mode, "GET", f"/chats/{chat_id}")[1]).get("conversation_id") and c, timeout=30)
    assert first["wa_id"] is None and first["username"] == "sheena.n"

    assert local_mode.post_webhook(payload("messages_both_identifiers.json", phone=phone, bsuid=bsuid, wamid="wamid.e2e-both-1")).status == 200
    assert wait_until(lambda: local_mode.chat_id_of(NUMBER, wa_id=phone), timeout=30) == chat_id
    ids = wait_until(lambda: {m["id"] for m in messages(local_mode, chat_id)} >= {"wamid.e2e-bsuid-1", "wamid.e2e-both-1"}, timeout=30)
    assert ids
    # The chat's copy of the identifiers is written at the end of the same ingest.
    chat = wait_until(lambda: (c := call(local_mode, "GET", f"/chats/{chat_id}")[1]).get("wa_id") and c, timeout=30)
    assert (chat["wa_id"], chat["user_id"]) == (phone, bsuid)
    assert chat["conversation_id"] == first["conversation_id"]  # the second message joined the same conversation
    assert chat["window_open"] and chat["last_customer_message_at"] >= first["last_customer_message_at"]
    listing = call(local_mode, "GET", f"/chats?phone_number_id={NUMBER}&limit=200")[1]["items"]
    assert [c["chat_id"] for c in listing].count(chat_id) == 1
    assert phone not in local_mode.output()  # no log line holds the number


def test_a_number_change_keeps_the_chat(local_mode):
    phone, bsuid = customer()
    new_phone = "1555" + str(uuid.uuid4().int)[:7]
    assert local_mode.post_webhook(payload("messages_both_identifiers.json", phone=phone, bsuid=bsuid)).status == 200
    chat_id = wait_until(lambda: local_mode.chat_id_of(NUMBER, wa_id=phone), timeout=30)
    assert local_mode.post_webhook(payload("system_user_changed_number.json", phone=phone, new_phone=new_phone)).status == 200
    assert wait_until(lambda: local_mode.chat_id_of(NUMBER, wa_id=new_phone), timeout=30) == chat_id
    assert local_mode.chat_id_of(NUMBER, wa_id=phone) == ""
    chat = wait_until(lambda: (c := call(local_mode, "GET", f"/chats/{chat_id}")[1]).get("wa_id") == new_phone and c, timeout=30)
    assert chat["wa_id"] == new_phone and [c["kind"] for c in chat["identity_changes"]] == ["user_changed_number"]
    assert any(m["type"] == "system" for m in messages(local_mode, chat_id))
    assert phone not in local_mode.output() and new_phone not in local_mode.output()


def test_a_customer_known_only_by_bsuid_gets_a_reply_through_the_sandbox_with_statuses_back(local_mode):
    _, bsuid = customer()
    assert local_mode.post_webhook(payload("messages_username_no_phone.json", bsuid=bsuid)).status == 200
    chat_id = wait_until(lambda: local_mode.chat_id_of(NUMBER, user_id=bsuid), timeout=30)
    status, sent = call(local_mode, "POST", f"/chats/{chat_id}/messages", {"type": "text", "text": "We have a slot on Thursday."})
    assert status == 202, sent

    def read():
        mine = next((m for m in messages(local_mode, chat_id) if m["id"] == sent["id"]), None)
        return mine if mine and mine["status"] == "read" else None

    reply = wait_until(read, timeout=60)
    assert reply["wamid"] and reply["chat_id"] == chat_id
    to_bsuid = [m for m in local_mode.sandbox("GET", "/_sandbox/messages").json()["messages"] if m["id"] == reply["wamid"]]
    assert [m["to"] for m in to_bsuid] == [bsuid]  # sent with `recipient`, the BSUID


def test_an_agents_chat_merged_into_the_bsuid_chat_keeps_the_agent_and_its_workflow(local_mode):
    phone, bsuid = customer()
    assert local_mode.post_webhook(payload("messages_username_no_phone.json", bsuid=bsuid)).status == 200
    survivor = wait_until(lambda: local_mode.chat_id_of(NUMBER, user_id=bsuid), timeout=30)
    wait_until(lambda: call(local_mode, "GET", f"/chats/{survivor}")[1].get("conversation_id"), timeout=30)
    time.sleep(1.1)  # the customer known by phone is the younger record: its chat is the one merged away
    assert call(local_mode, "PUT", "/agents/ana/status", {"status": "available"})[0] == 200
    try:
        by_phone = json.loads(payload("messages_both_identifiers.json", phone=phone, bsuid=bsuid))
        value = by_phone["entry"][0]["changes"][0]["value"]
        del value["contacts"][0]["user_id"], value["messages"][0]["from_user_id"]
        value["messages"][0]["text"]["body"] = "I want to talk to a real person"
        assert local_mode.post_webhook(json.dumps(by_phone).encode()).status == 200
        merged = wait_until(lambda: local_mode.chat_id_of(NUMBER, wa_id=phone), timeout=30)
        assert merged != survivor
        wait_until(lambda: call(local_mode, "GET", f"/chats/{merged}")[1].get("offered_to") == "ana", timeout=60)
        assert call(local_mode, "POST", f"/chats/{merged}/accept")[0] == 200
        wait_until(lambda: call(local_mode, "GET", f"/chats/{merged}")[1].get("waiting_for") == "agent", timeout=30)

        assert local_mode.post_webhook(payload("messages_both_identifiers.json", phone=phone, bsuid=bsuid)).status == 200
        assert wait_until(lambda: local_mode.chat_id_of(NUMBER, wa_id=phone) == survivor, timeout=30)
        chat = wait_until(lambda: (c := call(local_mode, "GET", f"/chats/{survivor}")[1]).get("assignee") == "ana" and c, timeout=30)
        assert (chat["mode"], chat["waiting_for"], chat["merged_from"]) == ("agent", "agent", [merged])
        mine = [c["chat_id"] for c in call(local_mode, "GET", "/chats?assignee=ana&limit=200")[1]["items"]]
        assert survivor in mine and merged not in mine
        # The agent's workflow goes on in the surviving chat: closing it there ends the conversation.
        assert call(local_mode, "POST", f"/chats/{survivor}/close")[0] == 200
        wait_until(lambda: call(local_mode, "GET", f"/chats/{survivor}")[1].get("mode") == "closed", timeout=30)
    finally:
        call(local_mode, "PUT", "/agents/ana/status", {"status": "away"})
