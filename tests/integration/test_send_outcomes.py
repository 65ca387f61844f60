"""What becomes of a send under moto, beyond Meta's plain answers: the item the store builds, the
`sending` mark, a send whose outcome is unknown, idempotent retries after a failed enqueue, and
End User Messaging Social's own message ids."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from coexist import wiring
from coexist.outbound.deadlines import CONNECT_TIMEOUT_S, READ_TIMEOUT_S
from coexist.outbound.graph import GraphApi, SendResult, SocialMessagingTransport
from coexist.outbound.outbox import message_id_for
from coexist.store.messages import UNSENT_SHARDS, OutboundMessage
from functions.sender import handler as sender_function
from tests.conftest import Context
from tests.integration.helpers import deliver, ingest_queued, message, messages_of
from tests.integration.test_ingest import CUSTOMER, NUMBER, status
from tests.integration.test_outbound import FakeCloudApi, open_window, our_chat, post, queued, run_sender

SOCIAL_ID = "phone-number-id-0123456789abcdef0123456789abcdef"


def item_of(aws, message_id: str) -> dict:
    return aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": message_id})["Item"]


# --- the item the store builds ---------------------------------------------------------------------
LAYOUT_CHAT = "c" + "layout".ljust(24, "x")  # an opaque chat id

def test_the_store_builds_the_queued_item_from_the_typed_record(aws):
    created, item = wiring.inbox().messages.create_outbound(OutboundMessage(
        id="out.layout", chat_id=LAYOUT_CHAT, phone_number_id=NUMBER, wa_id=CUSTOMER, source="campaign", type="text", text="hi",
        content={"body": "hi"}, request={"type": "text", "text": "hi"}, queued_at=1_700_000_000.25,
        template_category=None, sent_by="ana", idempotency_key="k" * 300,
    ))
    assert created
    stored = item_of(aws, "out.layout")
    assert stored == item
    assert (stored["chat_id"], stored["position"]) == (LAYOUT_CHAT, "01700000000.250#out.layout")
    assert stored["wa_id"] == CUSTOMER and "user_id" not in stored  # a customer known by phone only
    assert (stored["status"], stored["status_rank"], stored["direction"], stored["source"]) == ("queued", 0, "outbound", "campaign")
    assert (stored["timestamp"], stored["queued_at_ms"], stored["sent_by"]) == (1_700_000_000, 1_700_000_000_250, "ana")
    assert len(stored["idempotency_key"]) == 200 and "template_category" not in stored
    # In the sparse index of unsent messages until it is sent.
    assert 0 <= int(stored["unsent_shard"]) < UNSENT_SHARDS and stored["unsent_since_ms"] == 1_700_000_000_250
    again, existing = wiring.inbox().messages.create_outbound(OutboundMessage(
        id="out.layout", chat_id=LAYOUT_CHAT, phone_number_id=NUMBER, wa_id=CUSTOMER, source="agent", type="text", text="other",
        content={}, request={}, queued_at=1.0,
    ))
    assert not again and existing["source"] == "campaign"  # stored once per id


def test_a_sent_message_leaves_the_unsent_index(aws, cloud):
    open_window(aws)
    _, body = post({"type": "text", "text": "x"})
    run_sender(aws)
    item = item_of(aws, body["id"])
    assert item["status"] == "accepted"
    assert not {"unsent_shard", "unsent_since_ms", "send_attempt"} & set(item)


# --- `sending`, and a send whose outcome is unknown ------------------------------------------------

class WatchingCloudApi(FakeCloudApi):
    """Sees the message as stored at the moment Meta is called."""

    def __init__(self, aws):
        super().__init__()
        self.aws = aws
        self.seen: list[dict] = []

    def send_message(self, sender_id: str, payload: dict) -> SendResult:
        self.seen.append(item_of(self.aws, payload["biz_opaque_callback_data"]))
        return super().send_message(sender_id, payload)


def test_a_message_is_marked_sending_with_an_attempt_id_before_meta_is_called(aws):
    watching = WatchingCloudApi(aws)
    wiring.sender().transports["graph"] = watching
    open_window(aws)
    _, body = post({"type": "text", "text": "x"})
    run_sender(aws)
    [at_call] = watching.seen
    assert at_call["status"] == "sending" and len(at_call["send_attempt"]) == 32 and at_call["sending_at"] > 0
    assert message(our_chat(), body["id"])["status"] == "accepted"


def test_a_transient_error_puts_the_message_back_to_queued_not_sending(aws, cloud):
    open_window(aws)
    cloud.script = [SendResult(http_status=503)]
    _, body = post({"type": "text", "text": "x"})
    run_sender(aws, rounds=1)
    item = item_of(aws, body["id"])
    assert item["status"] == "queued" and "send_attempt" not in item and int(item["attempts"]) == 1


class FunctionTimedOut(BaseException):
    """Lambda ending the invocation in the middle of the call: nothing after it runs."""


class DyingCloudApi(FakeCloudApi):
    def send_message(self, sender_id: str, payload: dict) -> SendResult:
        super().send_message(sender_id, payload)  # Meta got it...
        raise FunctionTimedOut()  # ...and the function never heard back


def test_a_send_cut_off_mid_call_is_failed_as_outcome_unknown_never_sent_twice_and_its_statuses_still_land(aws):
    dying = DyingCloudApi()
    wiring.sender().transports["graph"] = dying
    open_window(aws)
    _, body = post({"type": "text", "text": "Your test results are ready."})
    [record] = queued(aws)
    from local.emulator import queue_arn
    from local.poller import sqs_event

    received = aws.sqs.receive_message(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], AttributeNames=["All"])["Messages"]
    with pytest.raises(FunctionTimedOut):
        sender_function.lambda_handler(sqs_event(received, queue_arn(aws.sqs, aws.env["OUTBOUND_QUEUE_URL"])), Context())
    assert item_of(aws, body["id"])["status"] == "sending"
    # SQS hands the record out again once its visibility runs out.
    aws.sqs.change_message_visibility(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0)
    fine = FakeCloudApi()
    wiring.sender().transports["graph"] = fine
    assert run_sender(aws) == [{"batchItemFailures": []}]

    assert len(dying.sent) == 1 and fine.sent == []  # not sent a second time
    shown = message(our_chat(), body["id"])
    assert (shown["status"], shown["failure_reason"]) == ("failed", "outcome_unknown")  # the agent is told
    assert queued(aws) == []

    # Meta did have it: its statuses carry our id back, and a delivery receipt outranks the failure.
    wamid = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    deliver(aws, status(wamid, "delivered", int(time.time()), recipient_id=CUSTOMER, biz_opaque_callback_data=body["id"]))
    shown = message(our_chat(), body["id"])
    assert shown["status"] == "delivered"
    assert item_of(aws, body["id"])["wamid"] == wamid
    assert [m["id"] for m in messages_of(our_chat()) if m["direction"] == "outbound"] == [body["id"]]  # no second copy


def test_callback_data_naming_a_message_of_another_number_links_nothing(aws, cloud):
    open_window(aws)
    _, body = post({"type": "text", "text": "x"})
    other_number = status("wamid.other-number", "delivered", int(time.time()), recipient_id=CUSTOMER, biz_opaque_callback_data=body["id"])
    other_number["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999999"
    deliver(aws, other_number)
    item = item_of(aws, body["id"])
    assert item["status"] == "queued" and "wamid" not in item
    assert "link_to" not in item_of(aws, "wamid.other-number")


# --- idempotent retries after a failed enqueue -----------------------------------------------------

def test_a_retry_after_a_failed_enqueue_puts_the_stored_message_on_the_queue_and_it_is_sent_once(aws, cloud, monkeypatch):
    open_window(aws)
    queue = wiring.outbox().queue
    real_enqueue = queue.enqueue

    def unavailable(*args):
        raise RuntimeError("SQS unavailable")

    monkeypatch.setattr(queue, "enqueue", unavailable)
    code, first = post({"type": "text", "text": "See you at 10."}, key="agent-7-msg-1")
    assert (code, first["code"]) == (503, "not_queued")
    assert queued(aws) == [] and item_of(aws, message_id_for(our_chat(), "agent-7-msg-1"))["status"] == "queued"

    monkeypatch.setattr(queue, "enqueue", real_enqueue)
    code, again = post({"type": "text", "text": "See you at 10."}, key="agent-7-msg-1")
    assert code == 202 and again["status"] == "queued"
    [record] = queued(aws)
    assert json.loads(record["Body"]) == {"message_id": again["id"]}
    code, third = post({"type": "text", "text": "See you at 10."}, key="agent-7-msg-1")
    assert code == 202 and len(queued(aws)) == 1  # the queue dropped the copy (deduplication by message id)

    run_sender(aws)
    assert len(cloud.sent) == 1 and message(our_chat(), again["id"])["status"] == "accepted"
    post({"type": "text", "text": "See you at 10."}, key="agent-7-msg-1")  # once sent, a retry enqueues nothing
    assert queued(aws) == []


def test_a_relayed_reply_retried_after_a_failed_enqueue_is_queued_again(aws, cloud, monkeypatch):
    """The Amazon Connect relay sends through the outbox with the event's id as the key and is
    retried by Lambda when that raises: the retry must queue the message the first try stored."""
    from coexist.outbound.outbox import NotQueued
    from coexist.outbound.requests import parse_send_request

    open_window(aws)
    outbox = wiring.outbox()
    real_enqueue = outbox.queue.enqueue
    monkeypatch.setattr(outbox.queue, "enqueue", lambda *a: (_ for _ in ()).throw(RuntimeError("SQS unavailable")))
    reply = dict(chat=our_chat(), request=parse_send_request({"type": "text", "text": "Ana here."}), source="agent",
                 idempotency_key="connect:event-1", sent_by="amazon-connect")
    with pytest.raises(NotQueued):
        outbox.send(**reply)
    monkeypatch.setattr(outbox.queue, "enqueue", real_enqueue)

    accepted = outbox.send(**reply)

    assert not accepted.created and accepted.message["status"] == "queued"
    run_sender(aws)
    assert len(cloud.sent) == 1 and message(our_chat(), accepted.message["id"])["status"] == "accepted"


# --- End User Messaging Social --------------------------------------------------------------------

class FakeSocialMessaging:
    """`SendWhatsAppMessage` as the service answers it: its own message id, a UUID."""

    def __init__(self):
        self.calls: list[dict] = []

    def send_whatsapp_message(self, **kwargs):
        self.calls.append(kwargs)
        return {"messageId": str(uuid.uuid4())}


@pytest.fixture
def social(aws, monkeypatch):
    monkeypatch.setenv("COEXIST_NUMBERS", json.dumps({NUMBER: {"transport": "social_messaging", "social_messaging_phone_number_id": SOCIAL_ID}}))
    wiring.reset()
    fake = FakeSocialMessaging()
    wiring.sender().transports["social_messaging"] = SocialMessagingTransport(fake, "v24.0")
    return fake


def social_event(entry: dict, aws_message_id: str) -> str:
    """An End User Messaging Social event as its SNS topic delivers it (raw message delivery)."""
    return json.dumps({
        "context": {"MetaWabaIds": [{"wabaId": entry["id"], "arn": "arn:aws:social-messaging:us-east-1:123456789012:waba/0123"}],
                    "MetaPhoneNumberIds": [{"metaPhoneNumberId": NUMBER, "arn": f"arn:aws:social-messaging:us-east-1:123456789012:{SOCIAL_ID}"}]},
        "whatsAppWebhookEntry": json.dumps(entry),
        "aws_account_id": "123456789012",
        "message_timestamp": "2025-01-08T23:30:43.271279391Z",
        "messageId": aws_message_id,
    })


def test_end_user_messaging_social_sends_keep_its_id_apart_and_statuses_find_the_message(aws, social):
    open_window(aws)
    _, body = post({"type": "text", "text": "Your prescription is ready."})
    assert run_sender(aws) == [{"batchItemFailures": []}]
    [call] = social.calls
    assert call["originationPhoneNumberId"] == SOCIAL_ID
    assert json.loads(call["message"])["biz_opaque_callback_data"] == body["id"]
    item = item_of(aws, body["id"])
    aws_id = item["transport_message_id"]
    assert item["status"] == "accepted" and item["transport"] == "social_messaging"
    assert "wamid" not in item and str(uuid.UUID(aws_id)) == aws_id  # the service's UUID is not a wamid
    assert aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": aws_id}).get("Item") is None

    wamid = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJBQkNERUYwMTIzNDU2Nzg5AA=="
    for state, at in (("sent", 0), ("read", 2), ("delivered", 1)):  # out of order, as Meta may
        entry = status(wamid, state, int(time.time()) + at, recipient_id=CUSTOMER, biz_opaque_callback_data=body["id"])["entry"][0]
        aws.sqs.send_message(QueueUrl=aws.env["INBOUND_QUEUE_URL"], MessageBody=social_event(entry, aws_id))
    assert all(r == {"batchItemFailures": []} for r in ingest_queued(aws))
    shown = message(our_chat(), body["id"])
    assert shown["status"] == "read"
    assert [m["id"] for m in messages_of(our_chat()) if m["direction"] == "outbound"] == [body["id"]]
    assert item_of(aws, body["id"])["wamid"] == wamid


def test_sends_are_made_once_by_their_clients_never_retried_behind_the_senders_back(aws):
    social = wiring.sender().transports["social_messaging"].client
    retries = social.meta.config.retries
    assert retries["total_max_attempts"] == 1
    assert (social.meta.config.connect_timeout, social.meta.config.read_timeout) == (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    graph = GraphApi("https://graph.example.test", "v24.0", lambda: "token")
    assert graph.pool.connection_pool_kw["retries"].total is False  # urllib3: no retry of any kind, POST included
    timeout = graph.pool.connection_pool_kw["timeout"]
    assert (timeout.connect_timeout, timeout.read_timeout) == (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)


@pytest.fixture
def cloud(aws):
    fake = FakeCloudApi()
    wiring.sender().transports["graph"] = fake
    return fake
