"""Customers by any identifier, through the real handlers: a customer who writes first by BSUID only
and then with both identifiers ends as one chat; two records of one person are merged once; number
and BSUID changes keep the chat; statuses of a message sent to a BSUID land on it. Payloads are
Meta's documented BSUID examples (tests/fixtures/meta/bsuid/SOURCES.md)."""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path

from coexist import wiring
from coexist.domain import consent
from coexist.domain.identity import is_customer_id
from tests.conftest import meta_payload
from tests.integration.helpers import api, chat_of, deliver, messages_of

BSUID_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "meta" / "bsuid"
NUMBER, PHONE, NEW_PHONE = "106540352242922", "16505551234", "12195555358"
BSUID, NEW_BSUID = "US.13491208655302741918", "US.88812345678901234567"
PHONE_LIKE = re.compile(r"\d{10,}")


def bsuid_payload(name: str) -> dict:
    return copy.deepcopy(json.loads((BSUID_FIXTURES / name).read_text()))


def chat_view(chat_id: str) -> dict:
    code, body = api(f"/api/chats/{chat_id}")
    assert code == 200, body
    return body


def lookup(**identifier) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in identifier.items())
    code, body = api(f"/api/chats?phone_number_id={NUMBER}&{query}")
    assert code == 200, body
    return body["items"]


def test_a_customer_writing_by_bsuid_then_with_both_identifiers_is_one_chat(aws):
    deliver(aws, bsuid_payload("messages_username_no_phone.json"))
    [first] = lookup(user_id=BSUID)
    assert is_customer_id(first["chat_id"]) and first["wa_id"] is None
    assert (first["user_id"], first["username"], first["contact_name"]) == (BSUID, "sheena.n", "Sheena Nelson")
    assert lookup(wa_id=PHONE) == []  # nobody knows the number yet

    deliver(aws, bsuid_payload("messages_both_identifiers.json"))
    [by_phone] = lookup(wa_id=PHONE)
    [by_bsuid] = lookup(user_id=BSUID)
    assert by_phone["chat_id"] == by_bsuid["chat_id"] == first["chat_id"]
    assert (by_phone["wa_id"], by_phone["user_id"]) == (PHONE, BSUID)
    assert [m["id"] for m in messages_of(first["chat_id"])] == ["wamid.BSUID-ONLY-1", "wamid.BOTH-1"]
    assert by_phone["last_customer_message_at"] == "2025-11-24T16:05:00Z"  # one window, from the later message
    listing = api(f"/api/chats?phone_number_id={NUMBER}")[1]["items"]
    assert [c["chat_id"] for c in listing] == [first["chat_id"]]
    assert not PHONE_LIKE.search(first["chat_id"])


def test_two_records_of_one_person_are_merged_once_with_messages_window_and_consent(aws):
    phone_first = meta_payload("messages_text.json")  # Meta's example: the customer known by phone
    deliver(aws, phone_first)
    by_phone = chat_of(NUMBER, PHONE)
    deliver(aws, bsuid_payload("messages_username_no_phone.json"))
    by_bsuid = chat_of(NUMBER, user_id=BSUID)
    assert by_phone != by_bsuid
    ledger = wiring.inbox().contacts.consent
    ledger.record(consent.change(NUMBER, by_phone, "marketing", consent.State.GRANTED, 1_764_000_000, consent.AgentEvidence("ana")))
    stop = consent.KeywordEvidence("wamid.BSUID-STOP", consent.text_sha256("STOP"), "en")
    ledger.record(consent.change(NUMBER, by_bsuid, "marketing", consent.State.WITHDRAWN, 1_764_000_100, stop))

    both = bsuid_payload("messages_both_identifiers.json")
    deliver(aws, both, both)  # and a retry
    survivor = chat_of(NUMBER, user_id=BSUID)
    assert survivor == chat_of(NUMBER, PHONE) and survivor in (by_phone, by_bsuid)
    loser = by_bsuid if survivor == by_phone else by_phone
    ids = [m["id"] for m in messages_of(survivor)]
    assert set(ids) == {phone_first["entry"][0]["changes"][0]["value"]["messages"][0]["id"], "wamid.BSUID-ONLY-1", "wamid.BOTH-1"}
    assert messages_of(loser) == []
    view = chat_view(survivor)
    assert view["merged_from"] == [loser] and view["last_customer_message_at"] == "2025-11-24T16:05:00Z"
    assert chat_view(loser)["merged_into"] == survivor
    # Consent follows the customer: the newer change holds the state, both are in the history, once.
    status, ledger_view = api(f"/api/contacts/{survivor}/consent")
    assert status == 200 and ledger_view["purposes"]["marketing"]["state"] == "withdrawn"
    assert [(c["state"], c["evidence"]["kind"]) for c in ledger_view["history"]["items"]] == [("withdrawn", "keyword"), ("granted", "agent")]
    assert [c["chat_id"] for c in api(f"/api/chats?phone_number_id={NUMBER}")[1]["items"]] == [survivor]


def test_a_number_change_keeps_the_chat_and_shows_the_change(aws):
    deliver(aws, bsuid_payload("messages_both_identifiers.json"))
    chat = chat_of(NUMBER, PHONE)
    notice = bsuid_payload("system_user_changed_number.json")
    deliver(aws, notice, notice)  # Meta retries: applied once
    assert chat_of(NUMBER, NEW_PHONE) == chat
    assert lookup(wa_id=PHONE) == []
    view = chat_view(chat)
    assert view["wa_id"] == NEW_PHONE
    assert [c["kind"] for c in view["identity_changes"]] == ["user_changed_number"]
    system = [m for m in messages_of(chat) if m["type"] == "system"]
    assert len(system) == 1 and "changed from" in system[0]["content"]["body"]
    assert view["window_expires_at"] == "2025-11-25T16:05:00Z"  # the notice does not open the window
    # The new number comes with a new BSUID: the customer's next message stays in the same chat.
    later = bsuid_payload("messages_both_identifiers.json")
    value = later["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update({"wa_id": NEW_PHONE, "user_id": NEW_BSUID})
    value["messages"][0].update({"from": NEW_PHONE, "from_user_id": NEW_BSUID, "id": "wamid.AFTER-CHANGE", "timestamp": "1764000900"})
    deliver(aws, later)
    assert chat_of(NUMBER, user_id=NEW_BSUID) == chat == chat_of(NUMBER, NEW_PHONE) == chat_of(NUMBER, user_id=BSUID)
    assert "wamid.AFTER-CHANGE" in [m["id"] for m in messages_of(chat)]
    assert [c["chat_id"] for c in api(f"/api/chats?phone_number_id={NUMBER}")[1]["items"]] == [chat]


def test_a_bsuid_change_re_points_the_bsuid_and_keeps_the_chat(aws):
    deliver(aws, bsuid_payload("messages_username_no_phone.json"))
    chat = chat_of(NUMBER, user_id=BSUID)
    deliver(aws, bsuid_payload("system_user_changed_user_id.json"))
    assert chat_of(NUMBER, user_id=NEW_BSUID) == chat
    view = chat_view(chat)
    assert view["user_id"] == NEW_BSUID and [c["kind"] for c in view["identity_changes"]] == ["user_changed_user_id"]


def test_a_status_naming_only_the_bsuid_lands_on_the_customers_chat(aws):
    deliver(aws, bsuid_payload("messages_username_no_phone.json"))
    chat = chat_of(NUMBER, user_id=BSUID)
    deliver(aws, bsuid_payload("status_sent_to_bsuid.json"))
    sent = next(m for m in messages_of(chat) if m["id"] == "wamid.SENT-TO-BSUID-1")
    assert sent["status"] == "sent" and sent["chat_id"] == chat


def test_chat_lookup_needs_one_identifier(aws):
    assert api(f"/api/chats?phone_number_id={NUMBER}&wa_id={PHONE}&user_id={BSUID}")[0] == 400
    assert api(f"/api/chats?wa_id={PHONE}")[0] == 400


def test_chat_lookup_refuses_an_identifier_of_the_wrong_kind(aws):
    assert api(f"/api/chats?phone_number_id={NUMBER}&user_id={PHONE}")[0] == 400
    assert api(f"/api/chats?phone_number_id={NUMBER}&wa_id={BSUID}")[0] == 400


def test_an_end_user_messaging_social_event_from_a_bsuid_only_customer_reaches_its_chat(aws):
    from tests.integration.helpers import ingest_queued

    entry = bsuid_payload("messages_username_no_phone.json")["entry"][0]
    event = {"whatsAppWebhookEntry": json.dumps(entry), "aws_account_id": "123456789012",
             "messageId": "6d69f07a-c317-4278-9d5c-6a84078419ec"}
    aws.session.client("sns").publish(TopicArn=aws.env["SOCIAL_MESSAGING_TOPIC_ARN"], Message=json.dumps(event))
    assert ingest_queued(aws) == [{"batchItemFailures": []}]
    chat = chat_of(NUMBER, user_id=BSUID)
    assert [m["id"] for m in messages_of(chat)] == ["wamid.BSUID-ONLY-1"] and chat_view(chat)["wa_id"] is None


def test_a_reply_to_a_bsuid_only_customer_goes_to_its_bsuid_paced_by_its_opaque_id(aws):
    from tests.integration.test_outbound import FakeCloudApi, post, run_sender

    fake = FakeCloudApi()
    wiring.sender().transports["graph"] = fake
    payload = bsuid_payload("messages_username_no_phone.json")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(time.time()))  # the window is open
    deliver(aws, payload)
    chat = chat_of(NUMBER, user_id=BSUID)
    code, body = post({"type": "text", "text": "We have a slot on Thursday."}, chat=chat)
    assert code == 202, body
    run_sender(aws)
    [(_, sent, _)] = fake.sent
    assert sent["recipient"] == BSUID and "to" not in sent
    buckets = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"]).scan()["Items"]
    assert f"pair#{NUMBER}#{chat}" in {b["bucket_id"] for b in buckets}
    assert not any(PHONE_LIKE.search(b["bucket_id"].split("#", 1)[1].replace(NUMBER, "")) for b in buckets)


# --- the Meta sandbox takes a send to a BSUID as Meta's BSUID page specifies ------------------------------
from tests.integration.test_meta_sandbox import error_code, receiver, sandbox, send  # noqa: E402,F401 - fixtures


def test_the_sandbox_accepts_recipient_and_reports_statuses_by_recipient_user_id(sandbox, receiver):
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "recipient": BSUID,
            "type": "text", "text": {"body": "We have a slot on Thursday."}}
    status, reply = send(sandbox, body)
    assert status == 200 and reply["contacts"] == [{"input": BSUID, "user_id": BSUID}]
    assert sandbox.wait_for_statuses()
    with receiver.lock:
        posted = [json.loads(b) for _, b in receiver.posts]
    statuses = [s for p in posted for s in p["entry"][0]["changes"][0]["value"]["statuses"]]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert all(s["recipient_user_id"] == BSUID and "recipient_id" not in s for s in statuses)
    assert error_code(send(sandbox, {**body, "recipient": "16505551234"})) == (400, 100)  # not a BSUID
    assert error_code(send(sandbox, {k: v for k, v in body.items() if k != "recipient"})) == (400, 131008)
