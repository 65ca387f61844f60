"""Domain events on the EventBridge bus (moto), published by the real handlers after their writes:
leads from click-to-WhatsApp ads, messages and statuses, chat changes, consent."""

from __future__ import annotations

import copy
import json

from coexist import wiring
from coexist.conversation.bot_turns import BotTurns
from local.emulator import EVENTS_RECORDED_ENV, recorded_events
from tests.conftest import FIXTURES, meta_payload
from tests.integration.helpers import chat_of, deliver, ingest_queued, message, post_webhook

NUMBER = "106540352242922"
CUSTOMER = "16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
CUSTOMER_TEXT = "Does it come in another color?"


def ctwa_message() -> dict:
    return json.loads((FIXTURES / "ctwa" / "messages_text_with_referral.json").read_text())


def recorded(aws) -> list[dict]:
    return recorded_events(aws.sqs, aws.env[EVENTS_RECORDED_ENV])


def of_type(events: list[dict], detail_type: str) -> list[dict]:
    return [e["detail"] for e in events if e["detail-type"] == detail_type]


def test_a_click_to_whatsapp_message_is_a_lead_with_the_ads_fields_and_no_text(aws):
    deliver(aws, ctwa_message())
    events = recorded(aws)
    chat_id = chat_of(NUMBER, CUSTOMER)
    [lead] = of_type(events, "lead.captured")
    assert lead["chat_id"] == chat_id and lead["message_id"] == WAMID and lead["phone_number_id"] == NUMBER
    assert (lead["ad_id"], lead["source_type"], lead["source_url"], lead["headline"], lead["ctwa_clid"], lead["media_type"]) == (
        "120226305854810726", "ad", "https://fb.me/3cr4Wqqkv", "Chat with us",
        "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N", "image")
    [received] = of_type(events, "message.received")
    assert received["message_type"] == "text" and received["version"] == 1
    assert all(e["source"] == "coexist" for e in events)
    assert CUSTOMER_TEXT not in json.dumps(events) and CUSTOMER not in json.dumps(events)  # ids, never text or numbers


def test_message_text_travels_only_when_the_deployment_allows_it(aws, monkeypatch):
    monkeypatch.setenv("CRM_EVENTS_INCLUDE_TEXT", "true")
    wiring.reset()
    deliver(aws, meta_payload("messages_text.json"))
    [received] = of_type(recorded(aws), "message.received")
    assert received["text"] == CUSTOMER_TEXT


def test_a_redelivered_webhook_publishes_the_same_event_ids(aws):
    deliver(aws, ctwa_message())
    first = {e["detail"]["id"] for e in recorded(aws)}
    deliver(aws, ctwa_message())
    again = {e["detail"]["id"] for e in recorded(aws)}
    assert again == first and len(first) == 2


def test_statuses_are_message_events(aws):
    delivered = meta_payload("status_v24_no_conversation_no_pricing.json")
    status = delivered["entry"][0]["changes"][0]["value"]["statuses"][0]
    failed = copy.deepcopy(meta_payload("status_failed_131049.json"))
    deliver(aws, delivered, failed)
    events = recorded(aws)
    [told] = of_type(events, f"message.{status['status']}")
    assert told["message_id"] == status["id"]
    [failure] = of_type(events, "message.failed")
    assert failure["error_codes"] == [131049]


def test_the_message_is_kept_when_the_bus_refuses_everything(aws, caplog):
    aws.session.client("events").delete_event_bus(Name=aws.env["EVENT_BUS_NAME"])
    post_webhook(ctwa_message())
    [result] = ingest_queued(aws)
    assert result == {"batchItemFailures": []}  # the record is done: its writes stand
    assert message(chat_of(NUMBER, CUSTOMER), WAMID)["text"] == CUSTOMER_TEXT
    assert "events given up after retries" in caplog.text
    assert CUSTOMER_TEXT not in caplog.text


def test_chat_changes_are_told_by_the_chat_repository(aws):
    deliver(aws, meta_payload("messages_text.json"))
    recorded(aws)
    chat_id = chat_of(NUMBER, CUSTOMER)
    chats = wiring.inbox().chats
    assert chats.queue(chat_id)
    assert chats.pick_up(chat_id, "ana")
    assert chats.close(chat_id)
    assert not chats.close(chat_id)  # refused: nothing happened, nothing is told
    events = recorded(aws)
    assert [e["detail-type"] for e in events] == ["chat.queued", "chat.assigned", "chat.closed"]
    assert events[1]["detail"]["agent_id"] == "ana"
    assert events[2]["detail"]["closed_by"] == "agent" and events[2]["detail"]["agent_id"] == "ana"


def test_a_stop_keyword_is_a_consent_change(aws):
    deliver(aws, meta_payload("messages_text.json"))
    recorded(aws)
    chat_id = chat_of(NUMBER, CUSTOMER)
    turns = BotTurns(wiring.inbox().contacts, wiring.bot_for_number, events=wiring.events())
    turns.run(wiring.inbox().chats.get(chat_id), [{"id": "wamid.stop", "type": "text", "text": "STOP", "timestamp": 1}])
    [consent] = of_type(recorded(aws), "consent.changed")
    assert (consent["chat_id"], consent["purpose"], consent["granted"], consent["source"], consent["evidence_id"]) == (
        chat_id, "marketing", False, "keyword", "wamid.stop")


def test_every_recorded_consent_change_is_an_event_once_whoever_made_it(aws):
    from coexist.domain import consent

    deliver(aws, meta_payload("messages_text.json"))
    recorded(aws)
    chat_id = chat_of(NUMBER, CUSTOMER)
    ledger = wiring.inbox().contacts.consent
    by_agent = consent.change(NUMBER, chat_id, "reminders", consent.State.GRANTED, 1_800_000_000, consent.AgentEvidence("ana", "asked"))
    by_meta = consent.platform_opt_out(NUMBER, chat_id, 131050, "out.1", 1_800_000_100)
    for change in (by_agent, by_meta, by_meta):  # Meta's refusal seen twice is one change
        ledger.record(change)
    events = of_type(recorded(aws), "consent.changed")
    assert [(e["purpose"], e["granted"], e["source"], e["evidence_id"]) for e in events] == [
        ("reminders", True, "agent", by_agent.change_id), ("marketing", False, "meta_131050", "out.1")]
