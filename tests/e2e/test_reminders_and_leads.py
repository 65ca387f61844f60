"""Over HTTP in local mode: a reminder scheduled a few seconds ahead is delivered through the Meta
sandbox and confirmed by the customer's button reply; a click-to-WhatsApp lead reaches the event
bus with its referral fields."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from tests.e2e.harness import API_TOKEN, fixture_bytes, wait_until
from tests.e2e.test_sending import grant_consent

pytestmark = pytest.mark.e2e

NUMBER = ("106540352242922", "15550783881")
WABA = "102290129340398"


class Bus:
    """The events local mode's bus recorded (on the emulator's queue), accumulated across reads."""

    def __init__(self, local):
        self.sqs = boto3.client("sqs", endpoint_url=local.moto, region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        self.url = local.env["EVENTS_RECORDED_QUEUE_URL"]
        self.seen: list[dict] = []

    def of(self, detail_type: str, **match) -> list[dict]:
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return [e["detail"] for e in self.seen
                if e["detail-type"] == detail_type and all(e["detail"].get(k) == v for k, v in match.items())]


def customer_writes(local, wa_id: str, message: dict) -> None:
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": NUMBER[1], "phone_number_id": NUMBER[0]},
             "contacts": [{"profile": {"name": "Customer"}, "wa_id": wa_id}],
             "messages": [{"from": wa_id, "timestamp": str(int(time.time())), **message}]}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": value}]}]})
    assert local.post_webhook(body.encode()).status == 200


def api(local, method: str, path: str, body: dict | None = None):
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    return local.request(method, "/api" + path, json.dumps(body).encode() if body is not None else None, headers)


def test_a_reminder_a_few_seconds_ahead_is_delivered_and_confirmed_by_a_button_reply(local_mode):
    local, bus = local_mode, Bus(local_mode)
    wa_id = "4479" + str(uuid.uuid4().int)[:8]
    customer_writes(local, wa_id, {"id": f"wamid.{uuid.uuid4().hex}", "type": "text", "text": {"body": "Hi, I booked online"}})
    chat_id = wait_until(lambda: local.chat_id_of(NUMBER[0], wa_id))
    grant_consent(local, chat_id, purpose="reminders")  # a reminder asks for the customer's consent to reminders
    send_at = (datetime.now(timezone.utc) + timedelta(seconds=4)).isoformat()
    reply = api(local, "POST", "/reminders", {
        "phone_number_id": NUMBER[0], "chat_id": chat_id, "send_at": send_at,
        "template": {"name": "appointment_reminder", "language": "en_US"}, "parameters": ["Ada", "Tuesday 10:00"]})
    assert reply.status == 201, reply.json()
    reminder_id = reply.json()["reminder_id"]

    def sent_to_customer():
        # The bot answered the customer's first message too: the reminder is the template.
        return [m for m in local.sandbox("GET", "/_sandbox/messages").json()["messages"] if m["to"] == wa_id and m["type"] == "template"]

    [sent] = wait_until(sent_to_customer, timeout=40)
    assert sent["template"] == "appointment_reminder" and sent["received_at"] >= datetime.fromisoformat(send_at).timestamp()
    reminder = wait_until(lambda: (r := api(local, "GET", f"/reminders/{reminder_id}").json()).get("status") == "sent" and r)
    delivered = wait_until(lambda: [m for m in local.api_get(f"/chats/{chat_id}/messages").json()["items"]
                                    if m["id"] == reminder["message_id"] and m["status"] in ("delivered", "read")], timeout=30)
    assert delivered

    customer_writes(local, wa_id, {"id": f"wamid.{uuid.uuid4().hex}", "type": "button",
                                   "context": {"from": NUMBER[1], "id": sent["id"]},
                                   "button": {"payload": f"reminder:{reminder_id}:confirm", "text": "Confirm"}})
    answered = wait_until(lambda: (r := api(local, "GET", f"/reminders/{reminder_id}").json()).get("answer") and r)
    assert answered["answer"] == "confirmed"
    [told] = wait_until(lambda: bus.of("reminder.answered", reminder_id=reminder_id))
    assert told["chat_id"] == chat_id and told["answer"] == "confirmed"


def test_a_click_to_whatsapp_lead_reaches_the_bus_with_its_referral(local_mode):
    local, bus = local_mode, Bus(local_mode)
    wa_id = "4478" + str(uuid.uuid4().int)[:8]
    payload = json.loads(fixture_bytes("ctwa/messages_text_with_referral.json"))
    value = payload["entry"][0]["changes"][0]["value"]
    wamid = f"wamid.{uuid.uuid4().hex}"
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = wa_id
    value["messages"][0].update({"id": wamid, "timestamp": str(int(time.time()))})
    assert local.post_webhook(json.dumps(payload).encode()).status == 200
    [lead] = wait_until(lambda: bus.of("lead.captured", message_id=wamid))
    assert lead["chat_id"] == local.chat_id_of(NUMBER[0], wa_id)
    assert (lead["ad_id"], lead["headline"], lead["source_url"], lead["source_type"], lead["ctwa_clid"]) == (
        "120226305854810726", "Chat with us", "https://fb.me/3cr4Wqqkv", "ad", "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N")
    assert "another color" not in json.dumps(bus.seen)  # ids, not what the customer wrote
