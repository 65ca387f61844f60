"""Reminders through the real API, reminders and ingest handlers on moto: scheduled on EventBridge
Scheduler, cancelled, sent through the outbox, answered by the customer's buttons."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from coexist import wiring
from functions.api import handler as api_function
from functions.reminders import handler as reminders_function
from local.emulator import EVENTS_RECORDED_ENV, recorded_events
from coexist.store.templates import TemplateStore
from tests.conftest import API_TOKEN, WABA_ID, Context, api_event, meta_payload
from tests.integration.helpers import chat_of, deliver, messages_of

NUMBER = "106540352242922"
CUSTOMER = "16505551234"


def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    raw = json.dumps(body).encode() if body is not None else b""
    response = api_function.lambda_handler(api_event(method, path, raw, headers), Context())
    return response["statusCode"], json.loads(response["body"])


def in_seconds(seconds: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


def reminder_request(**overrides) -> dict:
    return {"phone_number_id": NUMBER, "wa_id": CUSTOMER,
            "template": {"name": "appointment_reminder", "language": "en_US"},
            "parameters": ["Sheena", "Monday 9:00"], "send_at": in_seconds(3600), **overrides}


@pytest.fixture
def customer(aws):
    TemplateStore(aws.dynamodb.Table(aws.env["TEMPLATES_TABLE"])).replace_all(WABA_ID, [
        {"name": "appointment_reminder", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hi {{1}}, your appointment is on {{2}}."},
                        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": t} for t in ("Confirm", "Reschedule", "Cancel")]}]},
    ])
    deliver(aws, meta_payload("messages_text.json"))  # the customer is known: they wrote once
    chat_id = chat_of(NUMBER, CUSTOMER)
    grant_reminders(chat_id)
    return chat_id


def grant_reminders(chat_id: str, state=None) -> None:
    """The customer agreed to reminders (at the desk): a reminder's send asks for that consent."""
    from coexist import wiring
    from coexist.domain import consent

    change = consent.change(NUMBER, chat_id, "reminders", state or consent.State.GRANTED, int(time.time()),
                            consent.AgentEvidence("ana", "booked at the desk"))
    wiring.inbox().contacts.consent.record(change)


def test_a_refused_send_fails_the_reminder_with_the_policys_reason(aws, customer):
    _, reminder = call("POST", "/api/reminders", reminder_request(template={"name": "no_such_template", "language": "en_US"}))
    assert reminders_function.lambda_handler({"reminder_id": reminder["reminder_id"]}, Context()) == {"outcome": "refused"}
    _, failed = call("GET", f"/api/reminders/{reminder['reminder_id']}")
    assert failed["status"] == "failed" and failed["failure_reason"] == "template_not_approved"


def test_a_customer_who_withdrew_reminders_is_not_sent_one(aws, customer):
    from coexist.domain import consent

    grant_reminders(customer, consent.State.WITHDRAWN)
    _, reminder = call("POST", "/api/reminders", reminder_request())
    assert reminders_function.lambda_handler({"reminder_id": reminder["reminder_id"]}, Context()) == {"outcome": "refused"}
    _, failed = call("GET", f"/api/reminders/{reminder['reminder_id']}")
    assert failed["status"] == "failed" and failed["failure_reason"] == "opted_out"


def schedules(aws) -> list[dict]:
    scheduler = aws.session.client("scheduler")
    group = aws.env["REMINDER_SCHEDULE_GROUP"]
    return [scheduler.get_schedule(Name=s["Name"], GroupName=group) for s in scheduler.list_schedules(GroupName=group)["Schedules"]]


def button_reply(payload: str, wamid: str = "wamid.reply-1") -> dict:
    """Meta's interactive reply example (meta_docs/messages_interactive_button_reply.json) turned
    into a template quick-reply tap: type `button` with the payload the template's button carried."""
    webhook = meta_payload("messages_interactive_button_reply.json")
    message = webhook["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["interactive"]
    message.update({"id": wamid, "type": "button", "timestamp": str(int(time.time())), "button": {"payload": payload, "text": "Confirm"}})
    return webhook


def test_a_reminder_is_a_one_time_schedule_that_invokes_only_the_reminders_function(aws, customer):
    code, reminder = call("POST", "/api/reminders", reminder_request())
    assert code == 201, reminder
    assert reminder["status"] == "scheduled" and reminder["chat_id"] == customer
    [schedule] = schedules(aws)
    assert schedule["Name"] == reminder["reminder_id"]
    assert schedule["ScheduleExpression"].startswith("at(") and schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == aws.env["REMINDER_TARGET_ARN"]
    assert schedule["Target"]["DeadLetterConfig"]["Arn"] == aws.env["REMINDER_DLQ_ARN"]
    assert json.loads(schedule["Target"]["Input"]) == {"reminder_id": reminder["reminder_id"]}
    code, again = call("GET", f"/api/reminders/{reminder['reminder_id']}")
    assert code == 200 and again["send_at"] == reminder["send_at"]


def test_cancelling_before_the_time_removes_the_schedule(aws, customer):
    _, reminder = call("POST", "/api/reminders", reminder_request(chat_id=customer, wa_id=None))
    code, cancelled = call("DELETE", f"/api/reminders/{reminder['reminder_id']}")
    assert code == 200 and cancelled["status"] == "cancelled"
    assert schedules(aws) == []
    assert call("DELETE", f"/api/reminders/{reminder['reminder_id']}")[1]["status"] == "cancelled"  # idempotent
    assert reminders_function.lambda_handler({"reminder_id": reminder["reminder_id"]}, Context()) == {"outcome": "already_cancelled"}
    assert [m for m in messages_of(customer) if m["direction"] == "outbound"] == []


def test_at_its_time_it_is_sent_once_through_the_outbox_with_buttons_naming_it(aws, customer):
    _, reminder = call("POST", "/api/reminders", reminder_request())
    event = {"reminder_id": reminder["reminder_id"]}
    assert reminders_function.lambda_handler(event, Context()) == {"outcome": "sent"}
    assert reminders_function.lambda_handler(event, Context()) == {"outcome": "already_sent"}  # Scheduler fires at least once
    [sent] = [m for m in messages_of(customer) if m["direction"] == "outbound"]
    assert sent["status"] == "queued" and sent["type"] == "template"
    item = wiring.inbox().messages.get(sent["id"])
    assert item["purpose"] == "reminders"
    buttons = [c for c in item["request"]["template"]["components"] if c["type"] == "button"]
    assert [b["parameters"][0]["payload"] for b in buttons] == [
        f"reminder:{reminder['reminder_id']}:{answer}" for answer in ("confirm", "reschedule", "cancel")]
    _, now = call("GET", f"/api/reminders/{reminder['reminder_id']}")
    assert now["status"] == "sent" and now["message_id"] == sent["id"]
    code, refused = call("DELETE", f"/api/reminders/{reminder['reminder_id']}")
    assert code == 409 and refused["code"] == "not_cancellable"  # too late: it went out


def test_a_button_reply_is_recorded_on_the_reminder_once_and_told_under_one_event_id(aws, customer):
    """Meta's redelivery records nothing twice; the event is told again under the same id (events are
    at least once: a first attempt that failed after the record must not lose it; a CRM dedupes)."""
    _, reminder = call("POST", "/api/reminders", reminder_request())
    reminders_function.lambda_handler({"reminder_id": reminder["reminder_id"]}, Context())
    recorded_events(aws.sqs, aws.env[EVENTS_RECORDED_ENV])
    reply = button_reply(f"reminder:{reminder['reminder_id']}:confirm")
    deliver(aws, reply, reply)  # Meta delivers twice
    _, answered = call("GET", f"/api/reminders/{reminder['reminder_id']}")
    assert answered["answer"] == "confirmed" and answered["answer_message_id"] == "wamid.reply-1"
    told = [e["detail"] for e in recorded_events(aws.sqs, aws.env[EVENTS_RECORDED_ENV]) if e["detail-type"] == "reminder.answered"]
    assert {(t["id"], t["reminder_id"], t["answer"], t["chat_id"]) for t in told} == {(told[0]["id"], reminder["reminder_id"], "confirmed", customer)}
    assert len(told) == 2


def test_an_answer_recorded_before_a_failure_is_still_told_when_the_webhook_is_retried(aws, customer, monkeypatch):
    _, reminder = call("POST", "/api/reminders", reminder_request())
    reminders_function.lambda_handler({"reminder_id": reminder["reminder_id"]}, Context())
    recorded_events(aws.sqs, aws.env[EVENTS_RECORDED_ENV])
    service = wiring.reminders()
    publish = service.events.publish

    def unreachable(*events):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(service.events, "publish", unreachable)
    reply = button_reply(f"reminder:{reminder['reminder_id']}:confirm")
    with pytest.raises(RuntimeError):
        service.answered(reminder["reminder_id"], "confirmed", "wamid.reply-1", customer, 1_800_000_000)
    monkeypatch.setattr(service.events, "publish", publish)
    deliver(aws, reply)  # Meta's retry
    told = [e["detail"] for e in recorded_events(aws.sqs, aws.env[EVENTS_RECORDED_ENV]) if e["detail-type"] == "reminder.answered"]
    assert [(t["reminder_id"], t["answer"], t["message_id"]) for t in told] == [(reminder["reminder_id"], "confirmed", "wamid.reply-1")]


def test_a_reschedule_leaves_the_reminder_on_the_chat(aws, customer):
    _, reminder = call("POST", "/api/reminders", reminder_request())
    reminders_function.lambda_handler({"reminder_id": reminder["reminder_id"]}, Context())
    interactive = meta_payload("messages_interactive_button_reply.json")  # Meta's own reply-button example
    message = interactive["entry"][0]["changes"][0]["value"]["messages"][0]
    message["interactive"]["button_reply"]["id"] = f"reminder:{reminder['reminder_id']}:reschedule"
    deliver(aws, interactive)
    _, answered = call("GET", f"/api/reminders/{reminder['reminder_id']}")
    assert answered["answer"] == "reschedule_requested"
    _, chat = call("GET", f"/api/chats/{customer}")
    assert chat["reminder_context"]["reminder_id"] == reminder["reminder_id"]
    assert chat["reminder_context"]["template"] == "appointment_reminder"
    assert chat["reminder_context"]["send_at"] == answered["send_at"]  # times as ISO 8601, like the chat's own


def test_another_customers_reply_cannot_answer_a_reminder(aws, customer):
    _, reminder = call("POST", "/api/reminders", reminder_request())
    stranger = button_reply(f"reminder:{reminder['reminder_id']}:cancel", wamid="wamid.stranger")
    value = stranger["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = "16505559999"
    deliver(aws, stranger)
    _, untouched = call("GET", f"/api/reminders/{reminder['reminder_id']}")
    assert "answer" not in untouched


@pytest.mark.parametrize("change, code", [
    ({"chat_id": "c" + "a" * 24}, 422),  # both chat_id and wa_id
    ({"send_at": in_seconds(-60)}, 422),  # in the past
    ({"send_at": "2027-01-15T09:00:00"}, 422),  # no time zone
    ({"buttons": ["confirm", "confirm"]}, 422),
    ({"wa_id": "16505550000"}, 404),  # nobody known by this number
])
def test_bad_reminders_are_refused_with_a_reason(aws, customer, change, code):
    answer_code, answer = call("POST", "/api/reminders", reminder_request(**change))
    assert answer_code == code, answer
    assert answer["message"]
    assert schedules(aws) == []


def test_an_unknown_reminder_is_not_found(aws):
    assert call("GET", "/api/reminders/r" + "x" * 24)[0] == 404
    assert call("DELETE", "/api/reminders/not-a-reminder")[0] == 404


def test_a_send_time_between_seconds_is_scheduled_at_the_next_whole_second_never_before(aws, customer):
    asked = (datetime.now(timezone.utc) + timedelta(hours=1)).replace(microsecond=207_000)
    code, reminder = call("POST", "/api/reminders", reminder_request(send_at=asked.isoformat()))
    assert code == 201, reminder
    [schedule] = schedules(aws)
    next_second = asked.replace(microsecond=0) + timedelta(seconds=1)
    assert schedule["ScheduleExpression"] == f"at({next_second.strftime('%Y-%m-%dT%H:%M:%S')})"
