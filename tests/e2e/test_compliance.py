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


def admin(local, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    return local.request(method, path, json.dumps(body).encode() if body is not None else None, headers)


def test_an_export_an_erasure_and_an_erasure_refused_under_legal_hold(local_mode):
    import boto3

    chat_id = customer_writes(local_mode, "4478" + str(uuid.uuid4().int)[:8])
    assert as_agent(local_mode, "ana", "GET", f"/api/chats/{chat_id}/messages").status == 200
    # The bot's answer sent and read first: this test is about the rights, not about an erasure that
    # races a reply still in flight.
    def answered_and_read():
        items = local_mode.api_get(f"/chats/{chat_id}/messages").json()["items"]
        outbound = [m for m in items if m["direction"] == "outbound"]
        return outbound and all(m["status"] == "read" for m in outbound)
    wait_until(answered_and_read, timeout=60)

    # Export: accepted, built in the background by the exporter, then a link.
    requested = admin(local_mode, "POST", f"/api/chats/{chat_id}/exports")
    assert requested.status == 202 and requested.json()["status"] == "pending"
    export_id = requested.json()["export_id"]
    done = wait_until(lambda: (r := local_mode.api_get(f"/exports/{export_id}")).json()["status"] == "done" and r.json(), timeout=30)
    assert "X-Amz-Signature=" in done["url"]
    s3 = boto3.client("s3", endpoint_url=local_mode.moto, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    document = json.loads(s3.get_object(Bucket=local_mode.env["EXPORTS_BUCKET"], Key=f"exports/{export_id}.json")["Body"].read())
    assert document["chat"]["chat_id"] == chat_id
    assert "Does it come in another color?" in [m["text"] for m in document["messages"]]
    assert ("ana", "read_chat") in [(e["actor"], e["action"]) for e in document["audit"]]

    # Under a legal hold the erasure is refused; once lifted it goes through.
    assert admin(local_mode, "PUT", f"/api/chats/{chat_id}/legal-hold", {"reason": "dispute"}).status == 200
    refused = admin(local_mode, "POST", f"/api/chats/{chat_id}/erasure")
    assert refused.status == 409 and refused.json()["code"] == "legal_hold"
    assert local_mode.api_get(f"/chats/{chat_id}").status == 200
    assert admin(local_mode, "DELETE", f"/api/chats/{chat_id}/legal-hold").status == 200
    erased = admin(local_mode, "POST", f"/api/chats/{chat_id}/erasure")
    assert erased.status == 200, erased.body
    # The customer's message and whatever the bot answered meanwhile.
    assert erased.json()["erased"]["messages"] >= 1 and erased.json()["archive_retained_until"]
    assert local_mode.api_get(f"/chats/{chat_id}/messages").status == 404
    assert local_mode.api_get(f"/chats/{chat_id}").status == 404

    trail = [(e["action"], e["outcome"]) for e in local_mode.api_get(f"/audit?chat_id={chat_id}").json()["items"]
             if e["action"] != "read_chat"]
    assert trail[:4] == [("erase", "allowed"), ("clear_legal_hold", "allowed"), ("erase", "allowed"), ("set_legal_hold", "allowed")]
    assert ("export", "allowed") in trail
