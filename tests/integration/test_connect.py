"""Humans on Amazon Connect, end to end: the real definition executed by moto, its tasks, ingest and the
connect events function run in-process; only Amazon Connect itself is stubbed (botocore Stubber, the
real request and response shapes) through `wiring.connect_client`."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from coexist import wiring
from functions.connect_events import handler as connect_events
from local.workflows import EXECUTE_STATE_MACHINES
from tests.conftest import Context, emulated_account
from tests.integration.helpers import deliver, messages_of
from tests.integration.test_conversation import FAST, our_chat, chat, executions, finished, says, wait_for
from tests.integration.test_ingest import CUSTOMER, NUMBER

INSTANCE, FLOW = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
TOPIC = "arn:aws:sns:us-east-1:123456789012:coexist-connect-streaming"
CONTACT = "c0ffee00-1111-2222-3333-444444444444"


@pytest.fixture
def connect(monkeypatch):
    """Stubbed `connect` and `connectparticipant` clients, and what the code asked of them."""
    clients = {s: boto3.client(s, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
               for s in ("connect", "connectparticipant")}
    asked: list[tuple[str, dict]] = []
    for client in clients.values():
        client.meta.events.register("provide-client-params.*.*", lambda params, model, **_: asked.append((model.name, dict(params))))
    stubbers = {s: Stubber(c) for s, c in clients.items()}
    for stubber in stubbers.values():
        stubber.activate()
    monkeypatch.setattr(wiring, "connect_client", clients.__getitem__)
    yield stubbers, asked
    for stubber in stubbers.values():
        stubber.deactivate()


@pytest.fixture
def account(monkeypatch, connect):
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps({**FAST, "survey": False}))
    monkeypatch.setenv("COEXIST_NUMBERS", json.dumps({NUMBER: {"humans": {
        "provider": "connect", "instance_id": INSTANCE, "contact_flow_id": FLOW}}}))
    monkeypatch.setenv("CONNECT_STREAMING_TOPIC_ARN", TOPIC)
    # As the stack configures the conversation function (the IAM contract test maps them to its grants).
    monkeypatch.setenv("CONNECT_INSTANCE_ID", INSTANCE)
    monkeypatch.setenv("CONNECT_CONTACT_FLOW_ID", FLOW)
    with emulated_account(monkeypatch, config=EXECUTE_STATE_MACHINES, workflow=True) as emulated:
        yield emulated


def streamed(event_id: str, role: str, content_type: str, kind: str, content: str | None = None) -> dict:
    """What SNS hands the connect events function for one Connect chat streaming event."""
    body = {"AbsoluteTime": "2027-01-15T08:00:00.000Z", "ContentType": content_type, "Id": event_id, "Type": kind,
            "ParticipantId": "participant-agent", "DisplayName": "Ana", "ParticipantRole": role,
            "InitialContactId": CONTACT, "ContactId": CONTACT}
    if content is not None:
        body["Content"] = content
    attributes = {"InitialContactId": CONTACT, "ContactId": CONTACT, "ParticipantRole": role, "InstanceId": INSTANCE,
                  "AccountId": "123456789012", "Type": kind, "ContentType": content_type, "MessageVisibility": "ALL"}
    return {"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": f"{TOPIC}:sub", "Sns": {
        "Type": "Notification", "MessageId": f"sns-{event_id}", "TopicArn": TOPIC, "Message": json.dumps(body),
        "Timestamp": "2027-01-15T08:00:00.000Z", "MessageAttributes": {k: {"Type": "String", "Value": v} for k, v in attributes.items()}}}]}


def chat_item(account) -> dict:
    return account.dynamodb.Table(account.env["CHATS_TABLE"]).get_item(Key={"chat_id": our_chat()})["Item"]


def test_a_person_on_amazon_connect_answers_on_whatsapp_and_the_chat_end_closes_the_conversation(account, connect):
    stubbers, asked = connect
    stubbers["connect"].add_response("start_chat_contact", {
        "ContactId": CONTACT, "ParticipantId": "participant-customer", "ParticipantToken": "participant-token"})
    stubbers["connect"].add_response("start_contact_streaming", {"StreamingId": "stream-1"}, {
        "InstanceId": INSTANCE, "ContactId": CONTACT, "ChatStreamingConfiguration": {"StreamingEndpointArn": TOPIC}, "ClientToken": ANY})
    stubbers["connectparticipant"].add_response("create_participant_connection", {
        "ConnectionCredentials": {"ConnectionToken": "connection-token", "Expiry": "2099-01-01T00:00:00.000Z"}}, {
        "Type": ["CONNECTION_CREDENTIALS"], "ParticipantToken": "participant-token", "ConnectParticipant": True})
    stubbers["connectparticipant"].add_response("send_message", {"Id": "relayed-1", "AbsoluteTime": "2027-01-15T08:00:00.000Z"}, {
        "ContentType": "text/plain", "Content": "My appointment is tomorrow", "ConnectionToken": "connection-token", "ClientToken": ANY})

    deliver(account, says("I want to talk to a person"))
    wait_for(lambda: chat()["waiting_for"] == "connect", what="the handoff to Amazon Connect")
    assert chat()["mode"] == "connect"
    item = chat_item(account)
    assert item["connect_contact_id"] == CONTACT and item["handed_to_connect_at"]
    [start] = [params for name, params in asked if name == "StartChatContact"]
    assert CUSTOMER not in json.dumps(start["Attributes"]) and start["Attributes"]["channel"] == "whatsapp"
    assert "Customer: I want to talk to a person" in start["InitialMessage"]["Content"]

    # The customer writes on: the message goes into the contact.
    deliver(account, says("My appointment is tomorrow"))
    stubbers["connectparticipant"].assert_no_pending_responses()

    # The agent answers in Connect: a WhatsApp reply, once, even if SNS delivers it twice.
    reply = streamed("agent-msg-1", "AGENT", "text/plain", "MESSAGE", "Hello, this is Ana from the clinic.")
    assert connect_events.lambda_handler(reply, Context()) == {"outcomes": ["sent"]}
    connect_events.lambda_handler(reply, Context())
    echoed = streamed("customer-echo", "CUSTOMER", "text/plain", "MESSAGE", "My appointment is tomorrow")
    assert connect_events.lambda_handler(echoed, Context()) == {"outcomes": ["own_message"]}
    sent = [m for m in messages_of(our_chat()) if m["source"] == "agent"]
    assert [(m["type"], m["text"]) for m in sent] == [("text", "Hello, this is Ana from the clinic.")]
    assert chat()["first_human_reply_at"] is not None

    # Connect ends the chat: the execution ends, the chat is closed and its credentials are gone.
    ended = streamed("chat-ended", "SYSTEM", "application/vnd.amazonaws.connect.event.chat.ended", "EVENT")
    assert connect_events.lambda_handler(ended, Context()) == {"outcomes": ["ended"]}
    finished(account)
    assert chat()["mode"] == "closed" and chat()["conversation_state"] == "ended"
    item = chat_item(account)
    assert item["connect_ended_at"] and "connect_connection_token" not in item and "connect_participant_token" not in item
    assert len(executions(account)) == 1
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()


def test_when_connect_refuses_the_chat_the_built_in_directory_routes_it(account, connect):
    from tests.integration.test_conversation import add_agent

    stubbers, _ = connect
    stubbers["connect"].add_client_error("start_chat_contact", "LimitExceededException", http_status_code=429)
    add_agent("ana")
    deliver(account, says("I want to talk to a person"))
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert chat()["mode"] == "queued"
    stubbers["connect"].assert_no_pending_responses()


def test_when_the_handoff_fails_unexpectedly_the_built_in_directory_still_routes_the_chat(account, monkeypatch):
    from coexist.conversation.connect import ConnectDesk
    from tests.integration.test_conversation import add_agent

    def broken(self, chat_id, conversation_id):
        raise KeyError("ContactId")  # an answer not of the expected shape

    monkeypatch.setattr(ConnectDesk, "hand_over", broken)
    add_agent("ana")
    deliver(account, says("I want to talk to a person"))
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert chat()["mode"] == "queued" and "connect_contact_id" not in chat_item(account)
