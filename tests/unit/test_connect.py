"""Humans on Amazon Connect (coexist.conversation.connect) against botocore's own `connect` and
`connectparticipant` models: Stubber checks every request and response shape. The chat is the real
repository on an emulated table; messages, contacts, the workflow and the outbox are in-memory
stand-ins; tests/integration/test_connect.py runs them all for real."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from coexist.conversation.connect import (
    CHAT_ENDED, ConnectDesk, ConnectHumans, client_token, humans_for, parse_stream_record, transcript_summary,
)
from coexist.conversation.settings import ConversationSettings
from coexist.outbound.outbox import Refused
from coexist.domain.policy import Refusal
from coexist.number_config import NumberConfig, number_config
from coexist.resources import CHATS
from coexist.store.chats import ChatRepository

NUMBER, CUSTOMER = "106540352242922", "16505551234"
CHAT = "c" + "marialopez".ljust(24, "q")  # the customer's opaque id
CONVERSATION = "conv-0123456789abcdef"
INSTANCE, FLOW = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
TOPIC = "arn:aws:sns:us-east-1:123456789012:coexist-connect-streaming"
NOW = 1_800_000_000
NUMBERS = json.dumps({NUMBER: {"humans": {"provider": "connect", "instance_id": INSTANCE, "contact_flow_id": FLOW,
                                          "transcript_messages": 4, "transcript_chars": 400}}})
STARTED = {"ContactId": "contact-1", "ParticipantId": "participant-1", "ParticipantToken": "participant-token-1"}
CONNECTED = {"ConnectionCredentials": {"ConnectionToken": "connection-token-1", "Expiry": "2027-01-16T08:00:00.000Z"}}


# --- the chat, and in-memory stand-ins for the rest -------------------------------------------------
class Chats(ChatRepository):
    """The real repository; `chat` is the stored chat as its item, for assertions."""

    @property
    def chat(self) -> dict:
        return self.table.get_item(Key={"chat_id": CHAT})["Item"]


@pytest.fixture
def chats_table():
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
        yield dynamodb.create_table(**CHATS.create_table_kwargs("coexist-test-chats"))


class Messages:
    def __init__(self, items: list[dict]):
        self.items = {m["id"]: m for m in items}

    def get(self, message_id):
        return self.items.get(message_id)

    def latest_for_chat(self, chat, limit):
        mine = [m for m in self.items.values() if m["chat_id"] == chat]
        return sorted(mine, key=lambda m: m["position"], reverse=True)[:limit]


class Contacts:
    def get(self, number, wa_id):
        return {"profile_name": "Maria Lopez"}


class Workflow:
    def __init__(self):
        self.signals: list[tuple[str, dict]] = []

    def succeed(self, token, output):
        self.signals.append((token, output))
        return True


class Outbox:
    def __init__(self, refuse: bool = False):
        self.sent: dict[str, tuple] = {}
        self.refuse = refuse

    def send(self, chat, request, source, idempotency_key=None, sent_by=None):
        if self.refuse:
            raise Refused(Refusal("window_closed", "outside the window"))
        self.sent.setdefault(idempotency_key, (chat, request.text, source, sent_by))


def message(n: int, source: str, text: str | None, kind: str = "text", at: int = NOW) -> dict:
    return {"id": f"m{n:03d}", "chat_id": CHAT, "position": f"{at + n:011d}.000#m{n:03d}", "timestamp": at + n,
            "source": source, "type": kind, "text": text}


@pytest.fixture
def clients(chats_table):
    made = {s: boto3.client(s, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
            for s in ("connect", "connectparticipant")}
    stubbers = {s: Stubber(c) for s, c in made.items()}
    for stubber in stubbers.values():
        stubber.activate()
    yield made, stubbers, chats_table
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def desk_for(clients, chat: dict | None = None, messages: list[dict] = (), outbox=None) -> ConnectDesk:
    made, _, table = clients
    chat = {"phone_number_id": NUMBER, "wa_id": CUSTOMER, "chat_id": CHAT, "mode": "queued", "conversation_id": CONVERSATION,
            "conversation_state": "live", "conversation_started_at": NOW, "queued_at": NOW + 50, "bot_intent": "talk_to_person",
            **(chat or {})}
    table.put_item(Item=chat)
    return ConnectDesk(Chats(table, clock=lambda: NOW + 60), Messages(list(messages)), Contacts(), Workflow(), outbox or Outbox(),
                       clients=made.__getitem__, number_config=lambda n: number_config(n, NUMBERS),
                       environ={"CONNECT_STREAMING_TOPIC_ARN": TOPIC}, clock=lambda: NOW + 60)


def expect_handoff(stubbers, start_params=None):
    stubbers["connect"].add_response("start_chat_contact", STARTED, start_params)
    stubbers["connect"].add_response("start_contact_streaming", {"StreamingId": "stream-1"}, {
        "InstanceId": INSTANCE, "ContactId": "contact-1", "ChatStreamingConfiguration": {"StreamingEndpointArn": TOPIC},
        "ClientToken": client_token("stream", f"{CONVERSATION}\n{NOW + 50}")})
    stubbers["connectparticipant"].add_response("create_participant_connection", CONNECTED, {
        "Type": ["CONNECTION_CREDENTIALS"], "ParticipantToken": "participant-token-1", "ConnectParticipant": True})


# --- handing the chat over ---------------------------------------------------------------------------
def test_hand_over_starts_the_contact_streams_it_and_connects_the_customer(clients):
    history = [message(1, "customer", "old conversation", at=NOW - 10_000)]
    history += [message(n, "customer" if n % 2 else "bot", f"line {n} " + "x" * (400 if n == 9 else 10)) for n in range(2, 10)]
    history += [message(10, "agent", "agent note"), message(11, "customer", "my scan", kind="image")]
    _, stubbers, _ = clients
    expect_handoff(stubbers, {
        "InstanceId": INSTANCE, "ContactFlowId": FLOW, "ParticipantDetails": {"DisplayName": "Maria Lopez"},
        "Attributes": {"channel": "whatsapp", "phone_number_id": NUMBER, "coexist_conversation_id": CONVERSATION,
                       "customer_ref": ANY, "bot_intent": "talk_to_person"},
        "InitialMessage": {"ContentType": "text/plain", "Content": ANY},
        "ClientToken": client_token("start", f"{CONVERSATION}\n{NOW + 50}"),
    })
    desk = desk_for(clients, messages=history)
    assert desk.hand_over(CHAT, CONVERSATION) == {"handed": True}
    chat = desk.chats.chat
    assert (chat["mode"], chat["connect_contact_id"], chat["connect_connection_token"]) == ("connect", "contact-1", "connection-token-1")
    assert chat["connect_connection_expires_at"] > NOW and chat["handed_to_connect_at"] == NOW + 60
    assert desk.chats.chat_of_contact("contact-1") == CHAT


def test_the_start_request_itself(clients):
    history = [message(n, "customer" if n % 2 else "bot", f"line {n} " + "x" * (400 if n == 9 else 10)) for n in range(2, 10)]
    history += [message(1, "customer", "old conversation", at=NOW - 10_000), message(10, "agent", "agent note"),
                message(11, "customer", "my scan", kind="image")]
    desk = desk_for(clients, messages=history)
    request = desk._start_request(CHAT, desk.chats.get(CHAT), desk.humans(NUMBER), f"{CONVERSATION}\n{NOW + 50}")
    assert CUSTOMER not in json.dumps(request["Attributes"])  # no phone number unless configured
    transcript = request["InitialMessage"]["Content"]
    assert len(transcript) <= 400 and transcript.startswith("WhatsApp conversation so far (bot intent: talk_to_person):")
    lines = transcript.splitlines()[1:]
    assert lines[-1] == "Customer: [image] my scan"  # newest last; the agent's note is not the bot's
    assert "old conversation" not in transcript and "agent note" not in transcript
    assert len(lines) <= 4 and all(len(line) <= 300 for line in lines)
    # Deterministic: the same escalation asks for the same contact; a later escalation for another.
    assert request["ClientToken"] == client_token("start", f"{CONVERSATION}\n{NOW + 50}")
    assert client_token("start", f"{CONVERSATION}\n{NOW + 90}") != request["ClientToken"]


def test_a_shared_customer_number_is_opt_in(clients, monkeypatch):
    desk = desk_for(clients)
    shared = json.loads(NUMBERS)
    shared[NUMBER]["humans"]["share_customer_number"] = True
    desk.number_config = lambda n: number_config(n, json.dumps(shared))
    request = desk._start_request(CHAT, desk.chats.get(CHAT), desk.humans(NUMBER), "k")
    assert request["Attributes"]["customer_number"] == CUSTOMER


def test_a_retried_handoff_step_does_not_open_a_second_contact(clients):
    _, stubbers, _ = clients
    expect_handoff(stubbers)
    desk = desk_for(clients)
    assert desk.hand_over(CHAT, CONVERSATION) == {"handed": True}
    assert desk.hand_over(CHAT, CONVERSATION) == {"handed": True}  # no second call (Stubber would refuse it)


def test_connect_refusing_falls_back_to_the_directory_and_ends_a_half_made_contact(clients):
    _, stubbers, _ = clients
    stubbers["connect"].add_response("start_chat_contact", STARTED)
    stubbers["connect"].add_client_error("start_contact_streaming", "InvalidRequestException", http_status_code=400)
    stubbers["connect"].add_response("stop_contact", {}, {"InstanceId": INSTANCE, "ContactId": "contact-1"})
    counted = []
    desk = desk_for(clients)
    desk.metrics = counted.append
    assert desk.hand_over(CHAT, CONVERSATION) == {"handed": False, "reason": "InvalidRequestException"}
    chat = desk.chats.chat
    assert chat["mode"] == "queued" and "connect_contact_id" not in chat and "connect_participant_token" not in chat
    assert counted == ["ConnectHandoffFailed"]


def test_a_number_without_connect_settings_falls_back(clients):
    desk = desk_for(clients)
    desk.environ = {}  # no topic anywhere
    assert desk.hand_over(CHAT, CONVERSATION) == {"handed": False, "reason": "configuration"}


# --- relaying the customer's messages ---------------------------------------------------------------
ACTIVE = {"mode": "connect", "connect_contact_id": "contact-1", "connect_conversation_id": CONVERSATION,
          "connect_instance_id": INSTANCE, "connect_participant_token": "participant-token-1",
          "connect_connection_token": "connection-token-1", "connect_connection_expires_at": NOW + 3600}


def test_customer_messages_are_relayed_media_as_a_placeholder(clients):
    _, stubbers, _ = clients
    for n, content in ((20, "It hurts since Monday"), (21, "[image]")):
        stubbers["connectparticipant"].add_response("send_message", {"Id": f"x{n}", "AbsoluteTime": "2027-01-15T08:00:00.000Z"}, {
            "ContentType": "text/plain", "Content": content, "ConnectionToken": "connection-token-1",
            "ClientToken": client_token("relay", f"m{n:03d}")})
    desk = desk_for(clients, ACTIVE, [message(20, "customer", "It hurts since Monday"), message(21, "customer", None, kind="image")])
    assert desk.relay(CHAT, "m020") == "relayed_to_connect"
    assert desk.relay(CHAT, "m021") == "relayed_to_connect"


def test_an_expired_connection_is_renewed_from_the_participant_token(clients):
    _, stubbers, _ = clients
    stubbers["connectparticipant"].add_client_error("send_message", "AccessDeniedException", http_status_code=403)
    stubbers["connectparticipant"].add_response("create_participant_connection", CONNECTED)
    stubbers["connectparticipant"].add_response("send_message", {"Id": "x", "AbsoluteTime": "t"}, {
        "ContentType": "text/plain", "Content": "hello", "ConnectionToken": "connection-token-1", "ClientToken": ANY})
    desk = desk_for(clients, ACTIVE, [message(20, "customer", "hello")])
    assert desk.relay(CHAT, "m020") == "relayed_to_connect"


def test_a_contact_that_refuses_both_tokens_is_over_and_the_wait_ends(clients):
    _, stubbers, _ = clients
    stubbers["connectparticipant"].add_client_error("create_participant_connection", "AccessDeniedException", http_status_code=403)
    desk = desk_for(clients, {**ACTIVE, "connect_connection_expires_at": NOW, "workflow_token": "tok", "waiting_for": "connect"},
                    [message(20, "customer", "hello?")])
    assert desk.relay(CHAT, "m020") == "connect_ended"
    assert desk.workflow.signals == [("tok", {"event": "close"})]
    assert desk.chats.chat["connect_ended_at"]


def test_nothing_is_relayed_once_the_contact_ended(clients):
    desk = desk_for(clients, {**ACTIVE, "connect_ended_at": NOW})
    assert desk.relay(CHAT, "m020") == "not_in_connect"


# --- streaming events -------------------------------------------------------------------------------
def sns_record(message_id: str | None, role: str, content_type: str = "text/plain", content: str | None = None,
               kind: str = "MESSAGE", contact: str = "contact-1", visibility: str = "ALL") -> dict:
    body = {"AbsoluteTime": "2027-01-15T08:00:00.000Z", "ContentType": content_type, "Id": message_id, "Type": kind,
            "ParticipantId": "p", "DisplayName": "Ana", "ParticipantRole": role, "InitialContactId": contact, "ContactId": contact}
    if content is not None:
        body["Content"] = content
    attributes = {"InitialContactId": contact, "ContactId": contact, "ParticipantRole": role, "InstanceId": INSTANCE,
                  "AccountId": "123456789012", "Type": kind, "ContentType": content_type, "MessageVisibility": visibility}
    return {"EventSource": "aws:sns", "EventVersion": "1.0", "Sns": {
        "Type": "Notification", "MessageId": "sns-1", "TopicArn": TOPIC, "Message": json.dumps(body),
        "MessageAttributes": {k: {"Type": "String", "Value": v} for k, v in attributes.items()}}}


def connected_desk(clients, **chat) -> ConnectDesk:
    desk = desk_for(clients, {**ACTIVE, **chat})
    desk.chats.map_contact("contact-1", CHAT, CONVERSATION)
    return desk


def apply(desk, record) -> str:
    return desk.apply(parse_stream_record(record))


def test_an_agent_message_is_sent_once_even_when_sns_delivers_it_twice(clients):
    desk = connected_desk(clients)
    record = sns_record("evt-1", "AGENT", content="Hi Maria, Ana here.")
    assert apply(desk, record) == "sent"
    assert apply(desk, record) == "sent"
    assert desk.outbox.sent == {"connect:evt-1": (CHAT, "Hi Maria, Ana here.", "agent", "amazon-connect")}
    assert desk.chats.chat["first_human_reply_at"] == NOW + 60


def test_own_messages_typing_and_agent_only_messages_are_not_sent(clients):
    desk = connected_desk(clients)
    assert apply(desk, sns_record("e1", "CUSTOMER", content="It hurts since Monday")) == "own_message"
    assert apply(desk, sns_record("e2", "AGENT", "application/vnd.amazonaws.connect.event.typing", kind="EVENT")) == "ignored"
    assert apply(desk, sns_record("e3", "AGENT", content="note to supervisor", visibility="AGENT")) == "ignored"
    assert apply(desk, sns_record("e4", "SYSTEM", content="Please hold")) == "ignored"  # flow prompts: opt-in
    assert apply(desk, sns_record("e5", "AGENT", "application/vnd.amazonaws.connect.event.participant.left", kind="EVENT")) == "agent_left"
    assert desk.outbox.sent == {}


def test_a_refused_reply_is_counted_not_retried(clients):
    desk = connected_desk(clients)
    desk.outbox = Outbox(refuse=True)
    assert apply(desk, sns_record("evt-9", "AGENT", content="Are you still there?")) == "refused"


def test_the_chat_ending_ends_the_wait_once(clients):
    desk = connected_desk(clients, workflow_token="tok", waiting_for="connect")
    ended = sns_record("evt-end", "SYSTEM", CHAT_ENDED, kind="EVENT")
    assert apply(desk, ended) == "ended"
    assert apply(desk, ended) == "ended"
    assert desk.workflow.signals == [("tok", {"event": "close"})]


def test_the_end_arriving_before_the_workflow_waits_is_not_lost(clients):
    desk = connected_desk(clients)
    assert apply(desk, sns_record("evt-end", "SYSTEM", CHAT_ENDED, kind="EVENT")) == "ended"
    desk.await_end(CHAT, CONVERSATION, "late-token")
    assert desk.workflow.signals == [("late-token", {"event": "close"})]


def test_events_of_other_or_earlier_contacts_change_nothing(clients):
    desk = connected_desk(clients, workflow_token="tok", waiting_for="connect")
    assert apply(desk, sns_record("e", "AGENT", content="hi", contact="someone-else")) == "unknown_contact"
    desk.chats.map_contact("contact-0", CHAT, "conv-earlier")
    assert apply(desk, sns_record("e", "SYSTEM", CHAT_ENDED, kind="EVENT", contact="contact-0")) == "stale_contact"
    assert desk.workflow.signals == [] and desk.outbox.sent == {}


def test_records_that_are_not_chat_events_are_unreadable():
    assert parse_stream_record({"Sns": {"Message": "not json"}}) is None
    assert parse_stream_record({"Sns": {"Message": json.dumps({"Type": "MESSAGE"})}}) is None


def test_closing_stops_a_contact_still_open_and_drops_the_credentials(clients):
    _, stubbers, _ = clients
    stubbers["connect"].add_client_error("stop_contact", "ContactNotFoundException", http_status_code=410)
    desk = connected_desk(clients)
    desk.leave(CHAT, desk.chats.get(CHAT))
    chat = desk.chats.chat
    assert chat["connect_ended_at"] and not {"connect_connection_token", "connect_participant_token"} & set(chat)


# --- settings and the definition ------------------------------------------------------------------------
def test_humans_settings_default_to_the_directory_and_to_the_deployment_instance():
    assert humans_for(number_config(NUMBER, "{}")) is None
    env = {"CONNECT_INSTANCE_ID": INSTANCE, "CONNECT_CONTACT_FLOW_ID": FLOW, "CONNECT_STREAMING_TOPIC_ARN": TOPIC}
    humans = humans_for(NumberConfig(NUMBER, humans={"provider": "connect"}), env)
    assert humans == ConnectHumans(INSTANCE, FLOW, TOPIC)
    with pytest.raises(ValueError, match="unknown humans keys"):
        humans_for(NumberConfig(NUMBER, humans={"provider": "connect", "queue": "x"}), env)
    with pytest.raises(ValueError, match="chat_duration_minutes"):
        humans_for(NumberConfig(NUMBER, humans={"provider": "connect", "chat_duration_minutes": 5}), env)


def test_the_connect_wait_has_its_own_timeout():
    assert ConversationSettings().timeouts()["connect_timeout_seconds"] == 26 * 3600


def test_the_definition_routes_connect_numbers_and_falls_back_to_the_directory():
    states = json.loads((Path(__file__).resolve().parents[2] / "statemachine/conversation.asl.json").read_text())["States"]
    # The queue step hands the chat to Connect itself (or, when Connect cannot take it, routes it with
    # the directory): the choice after it only reads where the chat went.
    assert states["Escalate"]["Parameters"]["Payload"]["action"] == "route" and states["Escalate"]["Next"] == "Routed"
    # First, a person who answered from the phone after the bot escalated keeps the chat.
    taken_over, connect, *directory = states["Routed"]["Choices"]
    assert taken_over == {"Variable": "$.routing.value.taken_over", "BooleanEquals": True, "Next": "HumanTakeover"}
    assert connect == {"Variable": "$.routing.value.handed", "BooleanEquals": True, "Next": "InConnect"}
    assert {rule["Next"] for rule in directory} | {states["Routed"]["Default"]} == {"OfferToAgent", "Unassigned", "WaitForAgents"}
    assert "InConnect" not in {states[s].get("Next") for s in ("Assign", "WaitForAgents")}
    waiting = states["InConnect"]
    assert waiting["Parameters"]["Payload"]["action"] == "await_connect" and waiting["Next"] == "Close"
    assert waiting["TimeoutSecondsPath"] == "$.timeouts.connect_timeout_seconds"


def test_transcript_keeps_the_newest_lines_that_fit():
    said = [message(n, "customer", f"message number {n}") for n in range(30)]
    summary = transcript_summary(said, None, max_messages=10, max_chars=200)
    assert len(summary) <= 200 and summary.endswith("Customer: message number 29")
    assert "message number 19" not in summary
