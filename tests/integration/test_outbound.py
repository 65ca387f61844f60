"""Sending under moto: the send API's policy and idempotency, the sender against a fake Cloud API
(scripted answers), pacing state shared through DynamoDB, and statuses landing on our message."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import pytest

from coexist import wiring
from coexist.domain.pacing import MICROS, Rate
from coexist.outbound.graph import SendResult
from coexist.store.templates import TemplateStore
from functions.api import handler as api_function
from functions.sender import handler as sender_function
from tests.conftest import API_TOKEN, Context, api_event
from tests.integration.helpers import CountingTable, api, chat_of, deliver, message
from tests.integration.test_ingest import CUSTOMER, NUMBER, status, text_message



def our_chat() -> str:
    """The customer's chat: its id is opaque, so it is looked up by the phone number."""
    return chat_of(NUMBER, CUSTOMER)


WABA = "102290129340398"


class FakeCloudApi:
    """Answers like the Cloud API, from a script: a wamid, or an error code."""

    def __init__(self):
        self.sent: list[tuple[str, dict, float]] = []
        self.script: list[SendResult] = []
        self.lock = threading.Lock()

    def send_message(self, sender_id: str, payload: dict) -> SendResult:
        with self.lock:
            self.sent.append((sender_id, payload, time.monotonic()))
            if self.script:
                return self.script.pop(0)
            return SendResult(wamid=f"wamid.fake-{len(self.sent)}", http_status=200)


@pytest.fixture
def cloud(aws):
    fake = FakeCloudApi()
    wiring.sender().transports["graph"] = fake
    return fake


def post(body: dict, key: str | None = None, chat: str | None = None) -> tuple[int, dict]:
    chat = chat or our_chat()
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    event = api_event("POST", f"/api/chats/{chat}/messages", json.dumps(body).encode(), headers)
    response = api_function.lambda_handler(event, Context())
    return response["statusCode"], json.loads(response["body"])


def queued(aws) -> list[dict]:
    response = aws.sqs.receive_message(
        QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], MaxNumberOfMessages=10, AttributeNames=["All"], VisibilityTimeout=0
    )
    return response.get("Messages", [])


def run_sender(aws, rounds: int = 5) -> list[dict]:
    """Feed the outbound queue to the sender like the event source mapping; returns the responses."""
    from local.emulator import queue_arn
    from local.poller import sqs_event

    results = []
    arn = queue_arn(aws.sqs, aws.env["OUTBOUND_QUEUE_URL"])
    for _ in range(rounds):
        messages = aws.sqs.receive_message(
            QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        aws.last_outbound = messages
        result = sender_function.lambda_handler(sqs_event(messages, arn), Context())
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                aws.sqs.delete_message(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], ReceiptHandle=m["ReceiptHandle"])
        results.append(result)
        aws.last_results = result
    return results


def open_window(aws, at: int | None = None) -> None:
    deliver(aws, text_message(f"wamid.customer-{at or 'now'}", at or int(time.time())))


def seed_templates(aws) -> None:
    TemplateStore(aws.dynamodb.Table(aws.env["TEMPLATES_TABLE"])).replace_all(WABA, [
        {"name": "appointment_reminder", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hi {{1}}, your appointment is on {{2}}."}]},
        {"name": "spring_sale", "language": "en_US", "status": "APPROVED", "category": "MARKETING",
         "components": [{"type": "BODY", "text": "Spring sale: {{1}} off"}]},
        {"name": "new_feature", "language": "en_US", "status": "PENDING", "category": "MARKETING", "components": []},
    ])


def template_body(name: str, *params: str) -> dict:
    components = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}] if params else []
    return {"type": "template", "template": {"name": name, "language": "en_US", "components": components}}


# --- the send API --------------------------------------------------------------------------------

def test_text_inside_the_window_is_accepted_queued_and_visible_at_once(aws):
    open_window(aws)
    code, body = post({"type": "text", "text": "We can see you Thursday at 10."})
    assert code == 202
    assert (body["status"], body["source"], body["direction"], body["text"]) == ("queued", "agent", "outbound", "We can see you Thursday at 10.")
    assert body["id"].startswith("out.")
    assert message(our_chat(), body["id"])["status"] == "queued"
    [queued_message] = queued(aws)
    assert json.loads(queued_message["Body"]) == {"message_id": body["id"]}
    assert queued_message["Attributes"]["MessageGroupId"] == f"{NUMBER}#{our_chat()}"  # no phone number in it


def test_free_form_outside_the_window_is_refused_and_nothing_is_queued(aws):
    open_window(aws, at=int(time.time()) - 25 * 3600)
    code, body = post({"type": "text", "text": "hello?"})
    assert (code, body["code"]) == (409, "window_closed")
    assert "template" in body["message"]
    assert queued(aws) == []


def test_templates_are_checked_against_the_synced_list(aws):
    open_window(aws, at=int(time.time()) - 25 * 3600)
    seed_templates(aws)
    assert post(template_body("appointment_reminder", "Ada", "Tuesday"))[0] == 202
    code, body = post(template_body("new_feature"))
    assert (code, body["code"]) == (409, "template_not_approved")
    code, body = post(template_body("no_such_template"))
    assert (code, body["code"]) == (422, "template_not_approved")
    code, body = post(template_body("appointment_reminder", "Ada"))
    assert (code, body["code"]) == (422, "template_parameters")
    assert len(queued(aws)) == 1


def put_consent(body: dict, chat: str | None = None, agent: str = "ana") -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", "X-Agent-Id": agent}
    event = api_event("PUT", f"/api/contacts/{chat or our_chat()}/consent", json.dumps(body).encode(), headers)
    response = api_function.lambda_handler(event, Context())
    return response["statusCode"], json.loads(response["body"])


def test_marketing_needs_a_grant_and_a_withdrawal_refuses_it_utility_is_not(aws):
    open_window(aws)
    seed_templates(aws)
    code, body = post(template_body("spring_sale", "20%"))
    assert (code, body["code"]) == (409, "no_consent")  # never granted
    assert put_consent({"purpose": "marketing", "state": "granted", "note": "signed up at the desk"})[0] == 200
    assert post(template_body("spring_sale", "20%"))[0] == 202
    assert put_consent({"purpose": "marketing", "state": "withdrawn"})[0] == 200
    code, body = post(template_body("spring_sale", "20%"))
    assert (code, body["code"]) == (409, "opted_out")
    assert post(template_body("appointment_reminder", "Ada", "Tuesday"))[0] == 202
    assert len(queued(aws)) == 2  # the refused sends were never queued


def test_a_send_naming_reminders_needs_that_consent(aws):
    open_window(aws)
    seed_templates(aws)
    reminder = template_body("appointment_reminder", "Ada", "Tuesday") | {"purpose": "reminders"}
    code, body = post(reminder)
    assert (code, body["code"]) == (409, "no_consent") and "reminders" in body["message"]
    put_consent({"purpose": "reminders", "state": "granted"})
    assert post(reminder)[0] == 202
    code, body = post(template_body("appointment_reminder", "Ada", "Tuesday") | {"purpose": "newsletters"})
    assert (code, body["code"]) == (422, "invalid_message") and body["errors"][0]["field"] == "template.purpose"


def test_offboarded_number_cannot_send(aws):
    open_window(aws)
    deliver(aws, {"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": int(time.time()), "changes": [
        {"field": "account_update", "value": {"event": "ACCOUNT_OFFBOARDED"}}]}]})
    code, body = post({"type": "text", "text": "hi"})
    assert (code, body["code"]) == (409, "number_offboarded")


def test_the_api_reads_a_number_at_most_once_a_minute_so_an_offboarding_is_refused_within_that(aws, monkeypatch):
    from coexist.outbound.outbox import NUMBER_STATE_TTL_S

    open_window(aws)
    outbox, now = wiring.outbox(), time.time()
    monkeypatch.setattr(outbox, "clock", lambda: now)
    assert post({"type": "text", "text": "before"}, key="1")[0] == 202  # the number and its account are read here
    deliver(aws, {"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": int(time.time()), "changes": [
        {"field": "account_update", "value": {"event": "ACCOUNT_OFFBOARDED"}}]}]})
    assert post({"type": "text", "text": "cached"}, key="2")[0] == 202  # the instance's view is still fresh
    now += NUMBER_STATE_TTL_S
    code, body = post({"type": "text", "text": "after"}, key="3")
    assert (code, body["code"]) == (409, "number_offboarded")


def test_same_idempotency_key_never_sends_twice(aws, cloud):
    open_window(aws)
    first = post({"type": "text", "text": "once"}, key="agent-42-msg-1")
    second = post({"type": "text", "text": "once"}, key="agent-42-msg-1")
    assert first[0] == second[0] == 202
    assert first[1]["id"] == second[1]["id"]
    run_sender(aws)
    assert len(cloud.sent) == 1


def test_invalid_messages_get_422_with_the_broken_limit_and_unknown_chat_404(aws):
    open_window(aws)
    code, body = post({"type": "text", "text": "x" * 5000})
    assert (code, body["code"]) == (422, "invalid_message")
    assert "4096" in body["message"] and body["errors"][0]["field"] == "text.text"
    assert post({"type": "text", "text": "hi"}, chat=f"c{'z' * 24}")[0] == 404
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    response = api_function.lambda_handler(api_event("POST", f"/api/chats/{our_chat()}/messages", b"{not json", headers), Context())
    assert response["statusCode"] == 400


# --- the sender ------------------------------------------------------------------------------------

def test_sender_calls_meta_links_the_wamid_and_statuses_land_on_our_message(aws, cloud):
    open_window(aws)
    code, body = post({"type": "text", "text": "On my way"})
    assert run_sender(aws) == [{"batchItemFailures": []}]
    [(sender_id, payload, _)] = cloud.sent
    assert sender_id == NUMBER
    assert payload == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "text",
                       "text": {"body": "On my way", "preview_url": False},
                       "biz_opaque_callback_data": body["id"]}  # echoed in its statuses: our id, nothing of the chat
    sent = message(our_chat(), body["id"])
    assert sent["status"] == "accepted"
    deliver(aws, status("wamid.fake-1", "delivered", int(time.time()), recipient_id=CUSTOMER))
    deliver(aws, status("wamid.fake-1", "sent", int(time.time()) - 1, recipient_id=CUSTOMER,
                        pricing={"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}))
    listed = [m for m in api(f"/api/chats/{our_chat()}/messages")[1]["items"] if m["direction"] == "outbound"]
    assert [m["id"] for m in listed] == [body["id"]]  # the wamid does not appear as a second message
    assert listed[0]["status"] == "delivered" and listed[0]["pricing"]["type"] == "free_customer_service"


def test_a_status_that_beats_the_senders_record_is_adopted(aws, cloud):
    class Racing(FakeCloudApi):
        """Meta's `read` reaches the webhook before the sender has recorded Meta's answer."""

        def send_message(self, sender_id: str, payload: dict) -> SendResult:
            result = super().send_message(sender_id, payload)
            webhook = status(result.wamid, "read", int(time.time()), recipient_id=CUSTOMER,
                             biz_opaque_callback_data=payload["biz_opaque_callback_data"])
            # Meta's side and the webhook's: a thread of its own, not the sender's calls.
            meta = threading.Thread(target=deliver, args=(aws, webhook))
            meta.start()
            meta.join()
            return result

    wiring.sender().transports["graph"] = Racing()
    open_window(aws)
    code, body = post({"type": "text", "text": "race"})
    run_sender(aws)
    outbound = [m for m in api(f"/api/chats/{our_chat()}/messages")[1]["items"] if m["direction"] == "outbound"]
    assert [(m["id"], m["status"]) for m in outbound] == [(body["id"], "read")]


def test_a_failed_status_without_callback_data_that_beat_the_link_is_adopted_with_metas_error(aws, cloud):
    """Its item under the wamid holds Meta's error (numbers, stored as DynamoDB numbers); a later
    status that names our message moves it over."""
    open_window(aws)
    _, body = post({"type": "text", "text": "race"})
    error = [{"code": 131026, "title": "Message undeliverable"}]
    deliver(aws, status("wamid.early", "failed", int(time.time()), recipient_id=CUSTOMER, errors=error))
    deliver(aws, status("wamid.early", "sent", int(time.time()) - 1, recipient_id=CUSTOMER, biz_opaque_callback_data=body["id"]))
    [ours] = [m for m in api(f"/api/chats/{our_chat()}/messages")[1]["items"] if m["direction"] == "outbound"]
    assert (ours["id"], ours["status"]) == (body["id"], "failed")
    assert [e["code"] for e in ours["errors"]] == [131026]


def test_a_send_writes_no_link_item_and_a_status_without_callback_data_finds_the_message_in_its_chat(aws, cloud):
    open_window(aws)
    _, first = post({"type": "text", "text": "one"}, key="1")
    _, second = post({"type": "text", "text": "two"}, key="2")
    run_sender(aws)
    messages = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"])
    assert "Item" not in messages.get_item(Key={"id": "wamid.fake-1"})  # the wamid has no item of its own
    deliver(aws, status("wamid.fake-1", "read", int(time.time()), recipient_id=CUSTOMER))
    assert "Item" not in messages.get_item(Key={"id": "wamid.fake-1"})
    outbound = {m["id"]: m["status"] for m in api(f"/api/chats/{our_chat()}/messages")[1]["items"] if m["direction"] == "outbound"}
    assert outbound == {first["id"]: "read", second["id"]: "accepted"}


def test_a_late_status_keeps_its_facts_on_our_message_and_makes_no_item_of_the_wamid(aws, cloud):
    open_window(aws)
    _, body = post({"type": "text", "text": "late"})
    run_sender(aws)
    now = int(time.time())
    pricing = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    deliver(aws, status("wamid.fake-1", "read", now, recipient_id=CUSTOMER, biz_opaque_callback_data=body["id"]))
    # Out of order: Meta's `sent` (with its pricing) and `delivered` (without our callback data) after `read`.
    deliver(aws, status("wamid.fake-1", "sent", now - 2, recipient_id=CUSTOMER, biz_opaque_callback_data=body["id"], pricing=pricing),
            status("wamid.fake-1", "delivered", now - 1, recipient_id=CUSTOMER))
    messages = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"])
    assert "Item" not in messages.get_item(Key={"id": "wamid.fake-1"})  # nothing stored under the wamid to link back
    item = messages.get_item(Key={"id": body["id"]})["Item"]
    assert (item["status"], item["sent_at"], item["delivered_at"], item["read_at"]) == ("read", now - 2, now - 1, now)
    assert item["pricing"] == pricing
    entry = wiring.cost_ledger().get(NUMBER, "wamid.fake-1")
    assert (entry["basis"], entry["category"], entry["billable"]) == ("meta", "service", False)


@pytest.mark.parametrize(
    "code, reason",
    [(131047, "window_closed"), (131026, "undeliverable"), (132001, "template_missing"), (131049, "ecosystem_limit")],
)
def test_final_meta_errors_fail_the_message_with_metas_code(aws, cloud, code, reason):
    open_window(aws)
    cloud.script = [SendResult(http_status=400, error_code=code, error_title=f"({code}) title", error_details="details")]
    _, body = post({"type": "text", "text": "x"})
    assert run_sender(aws) == [{"batchItemFailures": []}]
    failed = message(our_chat(), body["id"])
    assert (failed["status"], failed["failure_reason"]) == ("failed", reason)  # the agent sees why
    assert failed["errors"] == [{"code": code, "title": f"({code}) title", "message": f"({code}) title", "details": "details"}]
    item = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": body["id"]})["Item"]
    assert item["failure_reason"] == reason


def test_131050_fails_and_records_the_marketing_withdrawal_with_metas_code_as_evidence(aws, cloud):
    open_window(aws)
    seed_templates(aws)
    put_consent({"purpose": "marketing", "state": "granted"})
    cloud.script = [SendResult(http_status=400, error_code=131050, error_title="user stopped marketing")]
    _, sent = post(template_body("spring_sale", "20%"))
    run_sender(aws)
    status, ledger = api(f"/api/contacts/{our_chat()}/consent")
    assert status == 200 and ledger["purposes"]["marketing"]["state"] == "withdrawn"
    newest = ledger["history"]["items"][0]
    assert newest["evidence"] == {"kind": "meta_error", "code": 131050, "message_id": sent["id"]}
    assert [c["state"] for c in ledger["history"]["items"]] == ["withdrawn", "granted"]
    code, body = post(template_body("spring_sale", "20%"))
    assert (code, body["code"]) == (409, "opted_out")


def test_rate_limit_and_5xx_come_back_later_and_the_reason_is_kept(aws, cloud):
    open_window(aws)
    cloud.script = [SendResult(http_status=400, error_code=130429, error_title="Rate limit hit"), SendResult(http_status=503)]
    _, body = post({"type": "text", "text": "x"})
    [result] = run_sender(aws, rounds=1)
    assert len(result["batchItemFailures"]) == 1
    item = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": body["id"]})["Item"]
    assert item["status"] == "queued" and item["last_error"]["reason"] == "rate_limited"
    assert aws.sqs.receive_message(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"]).get("Messages", []) == []  # deferred, not lost
    # Make it visible again and run: 5xx, then success.
    _make_visible(aws)
    run_sender(aws, rounds=1)
    item = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": body["id"]})["Item"]
    assert item["last_error"]["reason"] == "meta_unavailable" and int(item["attempts"]) == 2
    _make_visible(aws)
    run_sender(aws, rounds=1)
    assert message(our_chat(), body["id"])["status"] == "accepted"
    assert len(cloud.sent) == 3


def _make_visible(aws):
    """Skip a deferral's wait: make the last received messages that were deferred visible now."""
    deferred = {f["itemIdentifier"] for f in aws.last_results["batchItemFailures"]}
    for m in aws.last_outbound:
        if m["MessageId"] in deferred:
            aws.sqs.change_message_visibility(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)


def test_when_the_attempts_run_out_the_message_fails_is_parked_with_its_reason_and_its_group_goes_on(aws, cloud):
    from coexist.resources import OUTBOUND_MAX_SEND_ATTEMPTS

    open_window(aws)
    cloud.script = [SendResult(http_status=500)] * OUTBOUND_MAX_SEND_ATTEMPTS
    _, first = post({"type": "text", "text": "x"}, key="first")
    _, second = post({"type": "text", "text": "y"}, key="second")
    for attempt in range(1, OUTBOUND_MAX_SEND_ATTEMPTS):
        run_sender(aws, rounds=1)
        assert message(our_chat(), first["id"])["status"] == "queued", attempt
        _make_visible(aws)
    run_sender(aws, rounds=1)  # the last attempt: parked, and the customer's next message is sent
    item = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": first["id"]})["Item"]
    assert item["status"] == "failed" and item["failure_reason"] == "retries_exhausted: meta_unavailable"
    assert int(item["attempts"]) == OUTBOUND_MAX_SEND_ATTEMPTS
    assert message(our_chat(), second["id"])["status"] == "accepted"
    [parked] = aws.sqs.receive_message(
        QueueUrl=aws.env["OUTBOUND_DLQ_URL"], MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
    assert json.loads(parked["Body"])["message_id"] == first["id"]
    assert parked["MessageAttributes"]["reason"]["StringValue"] == "retries_exhausted: meta_unavailable"
    assert parked["Attributes"]["MessageGroupId"] == aws.last_outbound[0]["Attributes"]["MessageGroupId"]
    assert queued(aws) == []

    # An operator redrives it (Meta is fine again): it is queued with a fresh budget and sent.
    aws.sqs.send_message(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], MessageBody=parked["Body"],
                         MessageGroupId=parked["Attributes"]["MessageGroupId"], MessageDeduplicationId="redrive-1")
    run_sender(aws, rounds=1)
    item = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": first["id"]})["Item"]
    assert item["status"] == "accepted" and int(item["attempts"]) == 0 and "failure_reason" not in item
    assert len(cloud.sent) == OUTBOUND_MAX_SEND_ATTEMPTS + 2  # the second message once, the redriven one once more


def test_a_record_that_names_no_message_is_held_and_the_rest_of_the_batch_is_sent(aws, cloud):
    open_window(aws)
    aws.sqs.send_message(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], MessageBody="not json",
                         MessageGroupId="broken", MessageDeduplicationId="broken-1")
    _, body = post({"type": "text", "text": "x"})
    [result] = run_sender(aws, rounds=1)
    [broken] = [m for m in aws.last_outbound if m["Body"] == "not json"]
    assert result["batchItemFailures"] == [{"itemIdentifier": broken["MessageId"]}]  # back later, then the DLQ
    assert message(our_chat(), body["id"])["status"] == "accepted"


def test_a_redelivered_message_that_meta_failed_for_good_is_not_sent_again(aws, cloud):
    open_window(aws)
    cloud.script = [SendResult(http_status=400, error_code=131047, error_title="Re-engagement message")]
    _, body = post({"type": "text", "text": "x"})
    [record] = queued(aws)
    run_sender(aws, rounds=1)
    aws.sqs.send_message(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], MessageBody=record["Body"],
                         MessageGroupId=record["Attributes"]["MessageGroupId"], MessageDeduplicationId="again")
    run_sender(aws, rounds=1)
    assert message(our_chat(), body["id"])["status"] == "failed" and len(cloud.sent) == 1


def test_a_message_still_waiting_at_the_queues_last_receive_is_failed_with_the_reason(aws, cloud, monkeypatch):
    """The queue's own net (deferrals are receives too): whatever held it, the message says why."""
    open_window(aws)
    cloud.script = [SendResult(http_status=401, error_code=190, error_title="Error validating access token")]
    _, first = post({"type": "text", "text": "one"}, key="1")
    _, second = post({"type": "text", "text": "two"}, key="2")
    run_sender(aws, rounds=1)  # the token error opens the circuit; the second message waits
    from coexist.outbound import batch

    monkeypatch.setattr(batch, "OUTBOUND_MAX_RECEIVES", 2)
    _make_visible(aws)
    run_sender(aws, rounds=1)
    for held in (first, second):  # the one the circuit holds, and the one queued behind it
        item = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": held["id"]})["Item"]
        assert item["status"] == "failed" and item["failure_reason"].startswith("retries_exhausted: circuit open")


def test_token_error_opens_the_circuit_and_holds_the_numbers_queue(aws, cloud):
    open_window(aws)
    cloud.script = [SendResult(http_status=401, error_code=190, error_title="Error validating access token")]
    post({"type": "text", "text": "one"}, key="1")
    post({"type": "text", "text": "two"}, key="2")
    results = run_sender(aws, rounds=1)
    assert len(results[0]["batchItemFailures"]) == 2
    assert len(cloud.sent) == 1  # the second message was not burnt
    circuit = wiring.throttle().circuit(NUMBER)
    assert circuit["reason"] == "access_token_invalid"
    _make_visible(aws)
    run_sender(aws, rounds=1)
    assert len(cloud.sent) == 1  # still held while the circuit is open


def test_a_customers_messages_keep_their_order_when_one_must_wait(aws, cloud):
    open_window(aws)
    cloud.script = [SendResult(http_status=400, error_code=131056, error_title="pair rate limit")]
    ids = [post({"type": "text", "text": f"m{i}"}, key=f"k{i}")[1]["id"] for i in range(3)]
    [result] = run_sender(aws, rounds=1)
    assert len(result["batchItemFailures"]) == 3
    assert [p["text"]["body"] for _, p, _ in cloud.sent] == ["m0"]
    _make_visible(aws)
    run_sender(aws)
    assert [p["text"]["body"] for _, p, _ in cloud.sent] == ["m0", "m0", "m1", "m2"]
    assert [message(our_chat(), i)["status"] for i in ids] == ["accepted"] * 3


def test_a_backlog_waits_in_reserved_slots_and_each_message_comes_back_once(aws, cloud, monkeypatch):
    """Far-off slots are reserved and kept on the message: when it comes back it is sent in its
    slot, without racing the rest of the backlog for the next free one (which would bring every
    waiting message back again and again, until the queue gave up on it)."""
    from coexist.outbound.sender import MAX_INLINE_WAIT_S, STALE_SLOT_S

    now = 1_000_000.0
    sender = wiring.sender()
    real_settings = sender.number_settings
    slow = lambda number: dataclasses.replace(real_settings(number), throughput_mps=1)  # noqa: E731
    monkeypatch.setattr(sender, "number_settings", slow)
    monkeypatch.setattr(sender, "clock", lambda: now)
    monkeypatch.setattr(sender, "sleep", lambda _seconds: None)
    monkeypatch.setattr(wiring.throttle(), "clock", lambda: now)
    period_s = slow(NUMBER).number_rate.period_us / 1e6
    customers = [f"1650555{i:04d}" for i in range(6)]
    for customer in customers:
        deliver(aws, text_message(f"wamid.open-{customer}", int(time.time()), sender=customer))
    sent = {post({"type": "text", "text": "hi"}, chat=chat_of(NUMBER, c))[1]["id"]: chat_of(NUMBER, c) for c in customers}

    run_sender(aws, rounds=1)  # all six at one instant: the first slots fit the in-process wait
    items = {i: aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": i})["Item"] for i in sent}
    inline = int(MAX_INLINE_WAIT_S // period_s) + 1
    assert sum(item["status"] == "accepted" for item in items.values()) == inline
    held = sorted(int(item["send_slot_ms"]) for item in items.values() if item["status"] == "queued")
    assert len(held) == 6 - inline and held[-1] - held[0] < STALE_SLOT_S * 1000
    assert all(abs((b - a) / 1000 - period_s) < 0.002 for a, b in zip(held, held[1:]))  # one slot each, in a row
    bucket = lambda: wiring.throttle().table.get_item(Key={"bucket_id": f"number#{NUMBER}"})["Item"]["tat"]  # noqa: E731
    reserved_until = bucket()

    now = held[-1] / 1000  # every held slot is due
    _make_visible(aws)
    run_sender(aws, rounds=1)
    assert [message(chat, i)["status"] for i, chat in sent.items()] == ["accepted"] * 6
    assert bucket() == reserved_until  # they came back to their own slots and took no others
    assert len(cloud.sent) == 6


def test_a_held_slot_missed_while_waiting_on_something_else_is_replaced_by_a_new_one(aws, cloud):
    """After an open circuit, say: a backlog of stale slots must not all fire at once."""
    open_window(aws)
    _, body = post({"type": "text", "text": "x"})
    messages = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"])
    messages.update_item(Key={"id": body["id"]}, UpdateExpression="SET send_slot_ms = :at",
                         ExpressionAttributeValues={":at": int((time.time() - 60) * 1000)})
    run_sender(aws, rounds=1)
    assert message(our_chat(), body["id"])["status"] == "accepted"
    bucket = wiring.throttle().table.get_item(Key={"bucket_id": f"number#{NUMBER}"}).get("Item")
    assert bucket is not None and int(bucket["tat"]) / 1e6 > time.time() - 5  # it queued for a slot now


def test_pacing_slots_are_shared_and_never_handed_out_twice(aws):
    from coexist.store.throttle import Throttle

    table = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"])
    senders = [Throttle(table), Throttle(table)]  # two Lambda instances, each with its own view
    rate = Rate(per_second=50, burst=1)
    slots: list[float] = []

    def take(throttle):
        # Twenty takers on one bucket: a take that loses eight races in a row gives up (the sender
        # puts the message back for a moment); like the sender, it asks again.
        for _ in range(50):
            slot = throttle.take("number#pacing-test", rate, max_wait_s=10)
            if slot.granted:
                slots.append(slot.at_s)
                return
            assert slot.circuit is None and slot.wait_s == 1.0  # contention, never a wait too long

    threads = [threading.Thread(target=take, args=(senders[i % 2],)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ordered = sorted(slots)
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    assert len(slots) == 20
    assert min(gaps) >= 0.02 - 1e-6  # 50/s: never two sends closer than 20 ms, whoever reserved them


def test_a_slot_is_kept_at_its_moment_whatever_its_write_took(aws):
    """The sender sleeps `wait_s` from when `take` returned: the write's round trip is not added to
    the wait, and the slot after an idle bucket's first send allows for that send leaving late."""
    from coexist.store.throttle import WRITE_ROUND_TRIP_ALLOWANCE_US, Throttle

    start, now = 1_800_000_000.0, [1_800_000_000.0]
    table = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"])

    class Slow:  # every write comes back 30 ms after it was sent
        def put_item(self, **request):
            table.put_item(**request)
            now[0] += 0.03

    throttle, rate = Throttle(Slow(), clock=lambda: now[0]), Rate(per_second=10)
    first = throttle.take("number#slow", rate, max_wait_s=10)
    assert first.granted and first.wait_s == 0 and first.at_s == start  # at once, leaving 30 ms late
    second = throttle.take("number#slow", rate, max_wait_s=10)
    booked = start + WRITE_ROUND_TRIP_ALLOWANCE_US / 1e6 + 0.1  # a period after the first's latest departure
    assert second.at_s == pytest.approx(booked)
    assert second.wait_s == pytest.approx(booked - (start + 0.06), abs=1e-6)  # from its write's return, 60 ms on


def test_an_uncontended_slot_costs_one_write_and_a_moved_bucket_one_more(aws):
    from coexist.store.throttle import Throttle

    table = CountingTable(aws.dynamodb.Table(aws.env["THROTTLE_TABLE"]))
    # One instant for both senders: on a loaded machine a real clock could let the bucket go idle
    # between the takes, and an idle bucket is (rightly) taken with one write.
    frozen = lambda: 1_800_000_000.0  # noqa: E731
    mine, other = Throttle(table, clock=frozen), Throttle(aws.dynamodb.Table(aws.env["THROTTLE_TABLE"]), clock=frozen)
    rate = Rate(per_second=100, burst=1)
    for _ in range(3):
        assert mine.take("number#calls", rate, max_wait_s=10).granted
    assert table.calls == ["put_item"] * 3  # no read before writing
    taken_elsewhere = other.take("number#calls", rate, max_wait_s=10)
    table.calls.clear()
    mine_now = mine.take("number#calls", rate, max_wait_s=10)
    assert table.calls == ["put_item", "put_item"]  # refused with the bucket as it is, then granted
    assert mine_now.at_s >= taken_elsewhere.at_s + 0.01 - 1e-6


def test_the_circuit_is_held_by_the_numbers_bucket_and_its_write_refuses_while_open(aws):
    """One request checks both: the write that takes a slot is refused while the circuit is open,
    keeps the slots reserved ahead, and takes the first slot after the cool-down (the probe)."""
    from coexist.store.throttle import Throttle

    now = [1_800_000_000.0]
    table = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"])
    throttle, elsewhere = Throttle(table, clock=lambda: now[0]), Throttle(table, clock=lambda: now[0])
    rate = Rate(per_second=10, burst=1)
    assert throttle.take("number#circuit", rate, max_wait_s=10).granted
    elsewhere.open_circuit("circuit", "access_token_invalid", cool_down_s=300)
    bucket = table.get_item(Key={"bucket_id": "number#circuit"})["Item"]
    assert bucket["reason"] == "access_token_invalid" and "tat" in bucket  # the reserved slots stay

    refused = throttle.take("number#circuit", rate, max_wait_s=10)
    assert not refused.granted and refused.circuit == "access_token_invalid" and refused.wait_s == pytest.approx(300)
    assert throttle.circuit("circuit") == {"reason": "access_token_invalid", "open_until": int(now[0]) + 300}
    assert table.get_item(Key={"bucket_id": "number#circuit"})["Item"]["tat"] == bucket["tat"]  # no slot taken

    now[0] += 301
    assert throttle.circuit("circuit") is None
    probe = throttle.take("number#circuit", rate, max_wait_s=10)
    assert probe.granted and probe.circuit is None
    assert "open_until" not in table.get_item(Key={"bucket_id": "number#circuit"})["Item"]


def test_a_message_holding_its_slot_still_waits_for_an_open_circuit(aws, cloud):
    open_window(aws)
    _, body = post({"type": "text", "text": "x"})
    aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).update_item(
        Key={"id": body["id"]}, UpdateExpression="SET send_slot_ms = :at", ExpressionAttributeValues={":at": int(time.time() * 1000)})
    wiring.throttle().open_circuit(NUMBER, "access_token_invalid", 300)
    [result] = run_sender(aws, rounds=1)
    assert len(result["batchItemFailures"]) == 1 and cloud.sent == []
    assert message(our_chat(), body["id"])["status"] == "queued"


def test_an_inbound_burst_leaves_fewer_send_slots_in_that_second(aws):
    """Meta counts a number's incoming and outgoing messages together: ingest counts each new
    customer message in the number's bucket, so the sends of that second get fewer slots."""
    from coexist.store.throttle import WRITE_ROUND_TRIP_ALLOWANCE_US, Throttle

    frozen = 1_800_000_000.0
    table = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"])
    rate = wiring.cached_number_settings()(NUMBER).number_rate

    def slots_within_a_second() -> int:
        sender = Throttle(table, clock=lambda: frozen)  # a sender instance that has not seen the bucket
        granted = 0
        while sender.take(f"number#{NUMBER}", rate, max_wait_s=1.0).granted:
            granted += 1
        return granted

    # From an idle bucket: the first send at once, the rest from a write's round trip later.
    assert slots_within_a_second() == 1 + (MICROS - WRITE_ROUND_TRIP_ALLOWANCE_US) // rate.period_us
    frozen += 3600  # the bucket is idle again
    wiring.throttle().clock = lambda: frozen  # ingest's view of time
    customers = [f"1650555{i:04d}" for i in range(8)]
    deliver(aws, *[text_message(f"wamid.burst-{c}", int(time.time()), sender=c) for c in customers])
    deliver(aws, text_message(f"wamid.burst-{customers[0]}", int(time.time()), sender=customers[0]))  # Meta's retry: counted once
    # The slots from now to a second on, less the 8 messages Meta counted.
    assert slots_within_a_second() == 1 + MICROS // rate.period_us - 8


def test_counting_moves_a_booked_bucket_on_by_its_periods_and_keeps_its_circuit(aws):
    from coexist.store.throttle import Throttle

    frozen = 1_800_000_000.0
    table = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"])
    rate = Rate(per_second=10, burst=1)
    sender, ingest = Throttle(table, clock=lambda: frozen), Throttle(table, clock=lambda: frozen)
    for _ in range(5):
        assert sender.take("number#counted", rate, max_wait_s=10).granted  # booked 0.5 s ahead
    sender.open_circuit("counted", "access_token_invalid", 300)
    booked = int(table.get_item(Key={"bucket_id": "number#counted"})["Item"]["tat"])
    ingest.count("number#counted", rate, 3)  # its view says idle: refused, then the booked form
    item = table.get_item(Key={"bucket_id": "number#counted"})["Item"]
    assert int(item["tat"]) == booked + 3 * rate.period_us and item["reason"] == "access_token_invalid"


def test_templates_sync_replaces_the_accounts_list(aws):
    class Graph:
        def message_templates(self, waba_id):
            return [{"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "components": [{"type": "BODY", "text": "Hello"}]}]

    seed_templates(aws)
    from coexist.outbound.template_sync import sync_templates

    [summary] = sync_templates(Graph(), wiring.templates(), [WABA])
    assert summary == {"waba_id": WABA, "templates": 1, "removed": 3}
    deliver(aws, text_message("wamid.seed", int(time.time())))
    code, body = api(f"/api/templates?phone_number_id={NUMBER}")
    assert code == 200 and [t["name"] for t in body["items"]] == ["hello_world"]
