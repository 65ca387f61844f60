"""A customer's rights over the real API handler, exporter and tables: an export of everything held
(asynchronous, then a short-lived link), erasure of the customer's messages, contact, chat and
identity rows with the erasure listed, and no erasure while a legal hold is set."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from coexist import wiring
from functions.exporter import handler as exporter_function
from tests.conftest import Context
from tests.integration.helpers import chat_of, deliver
from tests.integration.test_api_access import CHAT, call, deployed  # noqa: F401 - the fixture
from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message


def run_exporter(aws) -> list[dict]:
    """Deliver what waits on the exports queue to the exporter, as its event source mapping does."""
    sqs = aws.sqs
    url = aws.env["EXPORTS_QUEUE_URL"]
    results = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", []):
        records = [{"messageId": m["MessageId"], "body": m["Body"], "attributes": m["Attributes"]} for m in messages]
        result = exporter_function.lambda_handler({"Records": records}, Context())
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        results.append(result)
        if failed:
            break
    return results


def test_an_export_holds_everything_about_the_customer_and_is_fetched_by_a_short_lived_link(deployed):
    chat_id = chat_of(NUMBER, CUSTOMER)
    deliver(deployed, text_message("wamid.second", int(time.time()), body="my appointment"))
    call("ana", "GET", f"/api/chats/{CHAT}/messages")  # an access the export's audit part shows
    consent = {"purpose": "marketing", "state": "granted", "note": "asked at the front desk"}
    assert call("ana", "PUT", f"/api/contacts/{CHAT}/consent", consent)[0] == 200
    assert call("ana", "POST", f"/api/chats/{CHAT}/exports")[0] == 403  # admins only
    status, job = call("ada", "POST", f"/api/chats/{CHAT}/exports")
    assert status == 202 and job["status"] == "pending" and job["chat_id"] == chat_id
    assert call("ada", "GET", f"/api/exports/{job['export_id']}")[1]["status"] == "pending"

    assert run_exporter(deployed) == [{"batchItemFailures": []}]
    status, done = call("ada", "GET", f"/api/exports/{job['export_id']}")
    assert status == 200 and done["status"] == "done" and done["url_expires_in_s"] == 900
    assert "X-Amz-Expires=900" in done["url"] and "X-Amz-Signature=" in done["url"]
    assert call("ana", "GET", f"/api/exports/{job['export_id']}")[0] == 403

    stored = deployed.s3.get_object(Bucket=deployed.env["EXPORTS_BUCKET"], Key=f"exports/{job['export_id']}.json")
    document = json.loads(stored["Body"].read())
    assert document["format"] == "coexist.customer-export/1"
    assert document["chat"]["chat_id"] == chat_id and document["chat"]["wa_id"] == CUSTOMER
    assert {m["id"] for m in document["messages"]} == {"wamid.access", "wamid.second"}
    assert "my appointment" in [m["text"] for m in document["messages"]]
    assert document["contact"]["customer_id"] == chat_id
    assert document["consent"]["current"]["marketing"]["state"] == "granted"
    [change] = document["consent"]["history"]
    assert change["evidence"]["note"] == "asked at the front desk" and change["evidence"]["agent_id"] == "ana"
    assert ("ana", "read_chat") in [(e["actor"], e["action"]) for e in document["audit"]]
    assert ("ada", "export") in [(e["actor"], e["action"]) for e in document["audit"]]
    # Asking for the export and fetching its link are in the audit trail too.
    actions = [e["action"] for e in call("ada", "GET", f"/api/audit?chat_id={chat_id}")[1]["items"]]
    assert "export" in actions and "read_export" in actions


def test_an_unknown_export_is_not_found_for_an_admin_and_refused_to_an_agent(deployed):
    assert call("ada", "GET", "/api/exports/xnothere")[0] == 404
    assert call("ana", "GET", "/api/exports/xnothere")[0] == 403


def test_erasure_removes_the_customers_messages_contact_chat_and_identity_and_lists_it(deployed):
    chat_id = chat_of(NUMBER, CUSTOMER)
    consent = {"purpose": "marketing", "state": "granted", "note": "on the phone"}
    assert call("ana", "PUT", f"/api/contacts/{CHAT}/consent", consent)[0] == 200  # the ledger goes too
    assert call("sue", "POST", f"/api/chats/{CHAT}/erasure")[0] == 403  # admins only
    status, erased = call("ada", "POST", f"/api/chats/{chat_id}/erasure")
    assert status == 200, erased
    assert erased["chat_id"] == chat_id and erased["erased"]["messages"] == 1
    retained = datetime.fromisoformat(erased["archive_retained_until"])
    assert retained > datetime.now(timezone.utc) + timedelta(days=364)  # the archive's Object Lock retention
    assert "Object Lock" in erased["archive"]

    assert call("ada", "GET", f"/api/chats/{chat_id}")[0] == 404
    assert call("ada", "GET", f"/api/chats/{chat_id}/messages")[0] == 404
    tables = {name: deployed.dynamodb.Table(deployed.env[name]) for name in ("CHATS_TABLE", "MESSAGES_TABLE", "CONTACTS_TABLE", "CUSTOMERS_TABLE")}
    assert tables["MESSAGES_TABLE"].scan()["Items"] == []
    assert [i for i in tables["CHATS_TABLE"].scan()["Items"] if i.get("chat_id") == chat_id] == []
    assert tables["CONTACTS_TABLE"].scan()["Items"] == []
    assert [i for i in tables["CUSTOMERS_TABLE"].scan()["Items"] if i.get("customer_id") == chat_id] == []
    assert wiring.inbox().customers.find(NUMBER, __import__("coexist.domain.identity", fromlist=["Kind"]).Kind.PHONE, CUSTOMER) is None

    [listed] = wiring.customer_rights().store.erasures()
    assert listed["chat_id"] == chat_id and listed["erased_by"] == "ada" and listed["phone_number_id"] == NUMBER
    entries = call("ada", "GET", f"/api/audit?chat_id={chat_id}&action=erase")[1]["items"]
    assert [(e["actor"], e["outcome"]) for e in entries] == [("ada", "allowed"), ("sue", "refused")]
    # The same customer writing again is a new customer: nothing of the old one comes back.
    deliver(deployed, text_message("wamid.after", int(time.time())))
    assert chat_of(NUMBER, CUSTOMER) != chat_id


def test_a_conversation_still_running_when_its_chat_is_erased_writes_none_of_it_back(deployed):
    """The bot's turn, a takeover, a queue or a survey score that land after the erasure find no chat:
    each is refused, and no remnant of the chat (an item the reader could not make sense of) appears."""
    from coexist.domain.chat import WaitingFor

    chat_id = chat_of(NUMBER, CUSTOMER)
    chats = wiring.inbox().chats
    assert call("ada", "POST", f"/api/chats/{chat_id}/erasure")[0] == 200

    chats.record_bot_turn(chat_id, 1, {"step": "asked"}, "book")
    assert chats.add_pending(chat_id, "wamid.late") is False
    assert chats.take_pending(chat_id) == []
    assert chats.claim(chat_id, "late-conversation") is False
    assert chats.take_over(chat_id) is False and chats.queue(chat_id) is False and chats.end(chat_id) is False
    assert chats.park_token(chat_id, "late-conversation", WaitingFor.CUSTOMER, "token") is False
    chats.note_first_human_reply(chat_id)
    chats.request_transfer(chat_id, "ben", None)
    chats.record_score(chat_id, 5)
    chats.note_connect_ended(chat_id)

    assert chats.get(chat_id) is None
    assert [i for i in deployed.dynamodb.Table(deployed.env["CHATS_TABLE"]).scan()["Items"] if i.get("chat_id") == chat_id] == []
    assert call("ada", "GET", f"/api/chats/{chat_id}")[0] == 404
    assert call("ada", "GET", f"/api/chats/{chat_id}/messages")[0] == 404


def test_what_a_step_in_flight_stores_after_the_erasure_is_never_served_and_the_daily_replay_removes_it(deployed):
    """A bot turn that read the chat just before the erasure still sends its reply: the message
    lands under the erased chat id after the erasure listed the chat's messages. The reader never
    serves it, and the retention function's daily run applies the erasure again."""
    from coexist.domain.records import Source
    from coexist.outbound.requests import parse_send_request
    from functions.retention import handler as retention_function

    chat_id = chat_of(NUMBER, CUSTOMER)
    read_by_the_bot = wiring.inbox().chats.get(chat_id)
    assert call("ada", "POST", f"/api/chats/{chat_id}/erasure")[0] == 200
    wiring.outbox().send(chat_id, parse_send_request({"type": "text", "text": "Your results are ready"}),
                         source=Source.BOT, chat_item=read_by_the_bot)
    messages = deployed.dynamodb.Table(deployed.env["MESSAGES_TABLE"])
    [late] = [i for i in messages.scan()["Items"] if i.get("chat_id") == chat_id]
    assert late["text"] == "Your results are ready"
    assert wiring.inbox().chats.get(chat_id) is None  # the chat is not brought back by the send

    assert call("ada", "GET", f"/api/chats/{chat_id}/messages")[0] == 404
    assert call("ada", "GET", f"/api/chats/{chat_id}")[0] == 404

    outcome = retention_function.lambda_handler({"source": "aws.events"}, Context())
    assert outcome["erasures"] == {"erasures_replayed": 1, "messages_removed_again": 1, "chats_removed_again": 0}
    assert [i for i in messages.scan()["Items"] if i.get("chat_id") == chat_id] == []
    again = retention_function.lambda_handler({"source": "aws.events"}, Context())["erasures"]
    assert again["erasures_replayed"] == 1 and again["messages_removed_again"] == 0  # nothing left


def test_the_replay_covers_the_last_two_days_of_erasures(deployed):
    chat_id = chat_of(NUMBER, CUSTOMER)
    assert call("ada", "POST", f"/api/chats/{chat_id}/erasure")[0] == 200
    replay = wiring.erasure_replay()
    replay.clock = lambda: time.time() + 47 * 3600
    assert replay.run()["erasures_replayed"] == 1
    replay.clock = lambda: time.time() + 49 * 3600
    assert replay.run() == {"erasures_replayed": 0}


def test_messages_stored_before_their_chat_exists_are_still_served(deployed):
    """A status for a message sent from elsewhere can store it before its chat: not an erasure."""
    from coexist.store.privacy import PrivacyStore

    chat_id = chat_of(NUMBER, CUSTOMER)
    assert wiring.inbox().chats.erase(chat_id)  # the chat item alone, as if not yet written
    assert not PrivacyStore(deployed.dynamodb.Table(deployed.env["PRIVACY_TABLE"])).erased(chat_id)
    status, page = call("ada", "GET", f"/api/chats/{chat_id}/messages")
    assert status == 200 and [m["id"] for m in page["items"]] == ["wamid.access"]


def test_erasure_stops_the_conversation_still_running_on_the_chat(deployed, monkeypatch):
    from coexist.conversation.workflow import CHAT_ERASED, Workflow

    stopped = []
    monkeypatch.setattr(Workflow, "stop", lambda self, name, error, cause: stopped.append((name, error)) or True)
    chat_id = chat_of(NUMBER, CUSTOMER)
    assert wiring.inbox().chats.claim(chat_id, "conv-live") and wiring.inbox().chats.get(chat_id).live
    assert call("ada", "POST", f"/api/chats/{chat_id}/erasure")[0] == 200
    assert stopped == [("conv-live", CHAT_ERASED)]


def test_no_erasure_while_a_legal_hold_is_set(deployed):
    chat_id = chat_of(NUMBER, CUSTOMER)
    assert call("sue", "PUT", f"/api/chats/{CHAT}/legal-hold", {"reason": "case 42"})[0] == 403
    status, hold = call("ada", "PUT", f"/api/chats/{CHAT}/legal-hold", {"reason": "case 42"})
    assert status == 200 and hold["set_by"] == "ada" and hold["reason"] == "case 42"
    status, refused = call("ada", "POST", f"/api/chats/{CHAT}/erasure")
    assert status == 409 and refused["code"] == "legal_hold" and refused["legal_hold"]["reason"] == "case 42"
    assert call("ada", "GET", f"/api/chats/{CHAT}")[0] == 200  # nothing was erased
    assert wiring.customer_rights().store.erasures() == []
    assert call("ada", "DELETE", f"/api/chats/{CHAT}/legal-hold") == (200, {"chat_id": chat_id, "legal_hold": None})
    assert call("ada", "DELETE", f"/api/chats/{CHAT}/legal-hold")[0] == 404
    assert call("ada", "POST", f"/api/chats/{CHAT}/erasure")[0] == 200
    actions = [e["action"] for e in call("ada", "GET", f"/api/audit?chat_id={chat_id}")[1]["items"]]
    assert actions[:6] == ["erase", "clear_legal_hold", "clear_legal_hold", "read_chat", "erase", "set_legal_hold"]


def test_an_export_that_keeps_failing_is_marked_failed(deployed, monkeypatch):
    from coexist.privacy import CustomerRights

    status, job = call("ada", "POST", f"/api/chats/{CHAT}/exports")

    def broken(self, chat_id):
        raise RuntimeError("storage down")

    monkeypatch.setattr(CustomerRights, "export_document", broken)
    record = {"messageId": "m1", "body": json.dumps({"export_id": job["export_id"]}), "attributes": {"ApproximateReceiveCount": "3"}}
    assert exporter_function.lambda_handler({"Records": [record]}, Context()) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    status, failed = call("ada", "GET", f"/api/exports/{job['export_id']}")
    assert failed["status"] == "failed" and failed["failure"] == "RuntimeError"
