"""Health data stays out of what the running system writes, end to end over HTTP.

Sentinel message bodies, a contact name and customers' phone numbers go into local mode the way Meta
and an agent send them: a customer's message and its escalation to a person, the agent's reply
through the sender to the Meta sandbox and the statuses it sends back, the bot's answers, a phone-app
echo, an imported history chunk, and bad payloads (unsigned, not JSON, an envelope holding an item
nobody knows). Then every line local mode wrote (every function's structured logs and EMF metrics,
the emulator, the pollers, the workflow runner) and every Step Functions execution (its name, input,
output and whole history) is searched for them: zero hits. The same search over traces, which local
mode does not produce, is tests/integration/test_health_data_out_of_logs.py.

Its own local mode: the search reads everything that instance ever printed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest

from tests.e2e.harness import API_TOKEN, LocalMode, start_local_mode, wait_until
from tests.e2e.test_conversations import DISPLAY, FAST, NUMBER, envelope

pytestmark = pytest.mark.e2e

CUSTOMER = "1555" + str(uuid.uuid4().int)[:7]  # writes, escalates, gets the agent's reply
HISTORY_CUSTOMER = "1555" + str(uuid.uuid4().int)[:7]  # only in the imported history
NAME = "Zoe SNTLNAME Quillfeather"
DIAGNOSIS = "HIV test result"


def body(n: int) -> str:
    return f"SNTLBODY{n} my {DIAGNOSIS}"


SENTINELS = ("SNTLBODY", DIAGNOSIS, "SNTLNAME", "Quillfeather", CUSTOMER, HISTORY_CUSTOMER)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with start_local_mode({"COEXIST_CONVERSATION": json.dumps(FAST)}) as running:
        yield running


def call(local: LocalMode, method: str, path: str, agent: str | None = None, data: dict | None = None):
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", **({"X-Agent-Id": agent} if agent else {})}
    reply = local.request(method, "/api" + path, json.dumps(data).encode() if data is not None else None, headers)
    return reply.status, reply.json()


def customer_message(wa_id: str, text: str) -> bytes:
    message = {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    return envelope("messages", {"contacts": [{"profile": {"name": NAME}, "wa_id": wa_id}], "messages": [message]})


def executions(local: LocalMode) -> list[str]:
    """Every execution's name, input, output and history events, as text."""
    client = boto3.client("stepfunctions", endpoint_url=local.moto, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    found = []
    for machine in client.list_state_machines()["stateMachines"]:
        for execution in client.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            described = client.describe_execution(executionArn=execution["executionArn"])
            history = client.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
            found.append(json.dumps({"name": described["name"], "input": described.get("input"), "output": described.get("output"),
                                     "history": history}, default=str))
    return found


def test_no_message_text_name_or_phone_number_in_any_log_line_metric_or_execution(local):
    assert call(local, "PUT", "/agents/ana/status", data={"status": "available"})[0] == 200
    # A customer asks for a person (the bot escalates), an agent accepts and replies.
    assert local.post_webhook(customer_message(CUSTOMER, body(1) + ", can I talk to a real person")).status == 200
    chat = wait_until(lambda: local.chat_id_of(NUMBER, CUSTOMER), timeout=30)
    wait_until(lambda: call(local, "GET", f"/chats/{chat}")[1].get("offered_to") == "ana", timeout=60)
    assert call(local, "POST", f"/chats/{chat}/accept", agent="ana")[0] == 200
    status, sent = call(local, "POST", f"/chats/{chat}/messages", agent="ana", data={"type": "text", "text": body(2)})
    assert status == 202
    # The sandbox delivers it and sends its statuses back through the webhook.
    wait_until(lambda: next((m for m in call(local, "GET", f"/chats/{chat}/messages?limit=50")[1]["items"] if m["id"] == sent["id"]),
                            {}).get("status") == "read", timeout=60)
    assert local.post_webhook(customer_message(CUSTOMER, body(3))).status == 200

    # The phone app answers too (an echo), and a history chunk brings an older chat.
    echo = {"from": DISPLAY, "to": CUSTOMER, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "text",
            "text": {"body": body(4)}}
    assert local.post_webhook(envelope("smb_message_echoes", {"message_echoes": [echo]})).status == 200
    thread = {"id": HISTORY_CUSTOMER, "messages": [{"from": HISTORY_CUSTOMER, "id": f"wamid.h{uuid.uuid4().hex}", "type": "text",
                                                    "timestamp": str(int(time.time()) - 86400), "text": {"body": body(5)},
                                                    "history_context": {"status": "READ"}}]}
    history = {"history": [{"metadata": {"phase": 0, "chunk_order": 1, "progress": 100}, "threads": [thread]}]}
    assert local.post_webhook(envelope("history", history)).status == 200

    # Bad payloads: unsigned, not JSON, an item of a kind nobody knows.
    assert local.post_webhook(customer_message(CUSTOMER, body(6)), signature="sha256=" + "0" * 64).status == 401
    assert local.post_webhook(f"not json {body(7)} {NAME} {CUSTOMER}".encode()).status in (200, 400)
    odd = {"from": CUSTOMER, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "hologram",
           "hologram": {"caption": body(8)}}
    assert local.post_webhook(envelope("messages", {"contacts": [{"profile": {"name": NAME}, "wa_id": CUSTOMER}], "messages": [odd]})).status == 200

    # Everything has been taken in: the history's chat, the echo and the customer's last message.
    wait_until(lambda: local.chat_id_of(NUMBER, HISTORY_CUSTOMER), timeout=60)
    wait_until(lambda: len([m for m in call(local, "GET", f"/chats/{chat}/messages?limit=50")[1]["items"]
                            if m["direction"] == "inbound"]) >= 2, timeout=60)
    assert call(local, "POST", f"/chats/{chat}/close", agent="ana")[0] == 200
    call(local, "PUT", "/agents/ana/status", data={"status": "away"})
    time.sleep(2)  # the close's steps and the last statuses reach the log

    output = local.output()
    assert '"service":"coexist-ingest"' in output and '"service":"coexist-sender"' in output  # the functions' logs are there
    leaks = [line for line in output.splitlines() if any(s in line for s in SENTINELS)]
    assert not leaks, "health data in local mode's output:\n" + "\n".join(leaks[:20])
    ran = executions(local)
    assert ran, "no conversation workflow ran"
    leaked = [e[:500] for e in ran if any(s in e for s in SENTINELS)]
    assert not leaked, "health data in an execution:\n" + "\n".join(leaked)
