"""Compliance in local mode over HTTP: the audit trail records two agents' reads and sends with
where they came from, an admin lists it, and nothing can change it."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.harness import API_TOKEN, fixture_bytes, wait_until

pytestmark = pytest.mark.e2e

NUMBER = "106540352242922"
USER_AGENT = "coexist-e2e-console/1.0"


def customer_writes(local, wa_id: str) -> str:
    """A customer's message arriving now (the window is open); the chat's id once ingested."""
    payload = json.loads(fixture_bytes("meta_docs/messages_text.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = wa_id
    value["messages"][0].update({"from": wa_id, "id": f"wamid.e2e{uuid.uuid4().hex}", "timestamp": str(int(time.time()))})
    assert local.post_webhook(json.dumps(payload).encode()).status == 200
    return wait_until(lambda: local.chat_id_of(NUMBER, wa_id), timeout=30)


def as_agent(local, agent_id: str, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer local-agent-{agent_id}", "User-Agent": USER_AGENT, "Content-Type": "application/json"}
    return local.request(method, path, json.dumps(body).encode() if body is not None else None, headers)


def test_two_agents_reads_and_sends_are_in_the_audit_trail(local_mode):
    chat_id = customer_writes(local_mode, "4479" + str(uuid.uuid4().int)[:8])
    assert as_agent(local_mode, "ana", "GET", f"/api/chats/{chat_id}").status == 200
    assert as_agent(local_mode, "ana", "GET", f"/api/chats/{chat_id}/messages").status == 200
    sent = as_agent(local_mode, "ben", "POST", f"/api/chats/{chat_id}/messages", {"type": "text", "text": "Yes, in blue."})
    assert sent.status == 202, sent.body
    assert as_agent(local_mode, "ben", "GET", "/api/audit").status == 403  # agents do not read the trail

    reply = local_mode.api_get(f"/audit?chat_id={chat_id}")
    assert reply.status == 200, reply.body
    entries = [(e["actor"], e["role"], e["action"], e["outcome"], e["request"]) for e in reversed(reply.json()["items"])]
    assert entries == [
        ("ana", "agent", "read_chat", "allowed", f"GET /api/chats/{chat_id}"),
        ("ana", "agent", "read_chat", "allowed", f"GET /api/chats/{chat_id}/messages"),
        ("ben", "agent", "send", "allowed", f"POST /api/chats/{chat_id}/messages"),
    ]
    for entry in reply.json()["items"]:
        assert entry["source_ip"] == "127.0.0.1" and entry["user_agent"] == USER_AGENT

    ben = local_mode.api_get("/audit?user=ben").json()["items"]
    assert [(e["action"], e["outcome"]) for e in ben[:2]] == [("read_audit", "refused"), ("send", "allowed")]

    admin = {"Authorization": f"Bearer {API_TOKEN}"}
    for method in ("PUT", "DELETE", "POST"):
        assert local_mode.request(method, "/api/audit", b"{}", admin).status == 405
    assert local_mode.request("DELETE", f"/api/audit/{ben[0]['entry_id']}", None, admin).status == 405
    assert local_mode.api_get("/audit?user=ben").json()["items"][:2] == ben[:2]
