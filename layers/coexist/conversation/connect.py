"""Humans on Amazon Connect: the human part of a conversation held as an Amazon Connect chat contact.

A number whose `COEXIST_NUMBERS[<id>]["humans"]["provider"]` is "connect" hands an escalated chat to
a contact flow instead of the built-in agent directory:

- hand over: StartChatContact (the transcript so far as the first message), StartContactStreaming to
  the SNS topic the connect events function listens on, and a customer participant connection whose
  token lets us post the customer's later WhatsApp messages into the contact;
- relay: each new customer message is sent into the contact (SendMessage);
- stream events: the agent's messages become WhatsApp replies, the end of the chat ends the wait.

The contact is found again from the streaming events through the chat repository's contact map
(a key read, no Scan, no new index), and no phone number goes into Connect's contact attributes.
The participant and connection tokens are credentials: kept on the chat for the contact's life,
removed when it ends, never logged, never returned by the read API (it projects fields).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from coexist.domain.chat import Chat, WaitingFor
from coexist.domain.records import Source
from coexist.number_config import NumberConfig
from coexist.outbound.outbox import Refused
from coexist.outbound.requests import TEXT_MAX, parse_send_request
from coexist.store.contacts import display_name
from coexist.store.items import from_item_value

CLOSE = {"event": "close"}
DEFAULT_DISPLAY_NAME = "WhatsApp customer"
CHAT_ENDED = "application/vnd.amazonaws.connect.event.chat.ended"
PARTICIPANT_LEFT = "application/vnd.amazonaws.connect.event.participant.left"
TEXT_CONTENT = ("text/plain", "text/markdown")
AGENT, CUSTOMER, SYSTEM = "AGENT", "CUSTOMER", "SYSTEM"
CONTENT_MAX = 16384  # SendMessage / InitialMessage content
LINE_MAX = 300  # one transcript line; the summary keeps whole lines, newest first
DISPLAY_NAME_MAX = 256  # ParticipantDetails.DisplayName
TOKEN_MARGIN_S = 60
# The first message of a conversation is stamped by WhatsApp before the conversation starts (its
# webhook arrives seconds later, rarely minutes): the transcript reaches back this much further.
START_GRACE_S = 600  # a connection token this close to its expiry is renewed before use
# The contact is already over: stopping it again, or posting into it, is refused with these.
_GONE = {"ContactNotFoundException", "InvalidRequestException", "ResourceNotFoundException"}


# --- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectHumans:
    """`COEXIST_NUMBERS[<id>]["humans"]` of a number whose humans work in Amazon Connect."""

    instance_id: str
    contact_flow_id: str
    streaming_topic_arn: str
    chat_duration_minutes: int | None = None  # Connect's default (25 h) when not set
    transcript_messages: int = 10  # how many customer/bot messages the agent sees first
    transcript_chars: int = 2000
    share_customer_number: bool = False  # put the customer's WhatsApp number in the contact attributes
    relay_system_messages: bool = False  # flow prompts (SYSTEM) to the customer too, not only agents
    reference_salt: str = ""  # keys `customer_ref`: an unsalted hash of a phone number can be reversed


_ENV_DEFAULTS = {
    "instance_id": "CONNECT_INSTANCE_ID",
    "contact_flow_id": "CONNECT_CONTACT_FLOW_ID",
    "streaming_topic_arn": "CONNECT_STREAMING_TOPIC_ARN",
}


def humans_for(number: NumberConfig, environ=os.environ) -> ConnectHumans | None:
    """The number's Connect settings, None for the built-in directory; ValueError when wrong.
    The instance, flow and topic default to the deployment's (CONNECT_* environment variables)."""
    if not number.hands_to_connect:
        return None
    raw = {k: v for k, v in (number.humans or {}).items() if k != "provider"}
    known = {f.name for f in fields(ConnectHumans)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown humans keys of {number.phone_number_id}: {sorted(unknown)}")
    for name, variable in _ENV_DEFAULTS.items():
        raw[name] = raw.get(name) or environ.get(variable) or ""
    missing = [name for name in _ENV_DEFAULTS if not raw[name]]
    if missing:
        raise ValueError(f"humans of {number.phone_number_id} need {missing} (or {[_ENV_DEFAULTS[m] for m in missing]})")
    humans = ConnectHumans(**raw)
    if humans.chat_duration_minutes is not None and not 60 <= humans.chat_duration_minutes <= 10080:
        raise ValueError("humans chat_duration_minutes must be between 60 and 10080 (Connect's limits)")
    if not 1 <= humans.transcript_messages <= 50 or not 200 <= humans.transcript_chars <= 16000:
        raise ValueError("humans transcript_messages must be 1-50 and transcript_chars 200-16000")
    return humans


# --- pure helpers ----------------------------------------------------------------------------------
def client_token(purpose: str, *parts: str) -> str:
    """Deterministic, so a retried step or a redelivered message repeats a call, never doubles it."""
    return f"coexist-{purpose}-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


def customer_ref(chat_id: str, salt: str) -> str:
    """A stable reference to the customer that carries no phone number."""
    return "wa-" + hmac.new(salt.encode(), chat_id.encode(), hashlib.sha256).hexdigest()[:32]


def message_content(message: dict) -> str:
    """A stored message as chat text: its text, or a placeholder (with any caption) for media."""
    text = (message.get("text") or "").strip()
    kind = message.get("type") or "message"
    if kind in ("text", "interactive", "button"):
        return text or f"[{kind}]"
    return f"[{kind}] {text}".strip()


def transcript_summary(messages: list[dict], intent: str | None, max_messages: int, max_chars: int) -> str:
    """The conversation so far, for the agent: the newest customer/bot lines that fit, oldest first."""
    header = "WhatsApp conversation so far" + (f" (bot intent: {intent})" if intent else "") + ":"
    said = [m for m in messages if m.get("source") in (Source.CUSTOMER, Source.BOT)]
    said.sort(key=lambda m: (m.get("timestamp") or 0, m.get("position") or ""))
    lines = []
    for message in said[-max_messages:]:
        who = "Customer" if message["source"] == Source.CUSTOMER else "Bot"
        line = f"{who}: {message_content(message)}"
        lines.append(line if len(line) <= LINE_MAX else line[: LINE_MAX - 1] + "…")
    kept: list[str] = []
    size = len(header)
    for line in reversed(lines):
        if size + 1 + len(line) > max_chars:
            break
        kept.insert(0, line)
        size += 1 + len(line)
    return "\n".join([header, *kept])[:max_chars]


@dataclass(frozen=True)
class StreamEvent:
    """One Amazon Connect chat streaming event (the JSON in an SNS record's Message)."""

    id: str | None
    type: str  # MESSAGE | EVENT | ATTACHMENT | ...
    content_type: str
    role: str | None  # AGENT | CUSTOMER | SYSTEM | ...
    content: str | None
    initial_contact_id: str | None
    contact_id: str | None
    visibility: str  # CUSTOMER | AGENT | ALL

    @property
    def contact_ids(self) -> list[str]:
        """The contact we started is the initial one; after a transfer the current id differs."""
        return [c for c in dict.fromkeys((self.initial_contact_id, self.contact_id)) if c]


def parse_stream_record(record: dict) -> StreamEvent | None:
    """An SNS record from the streaming topic, or None if it holds no Connect chat event."""
    sns = record.get("Sns") or {}
    attributes = {k: (v or {}).get("Value") for k, v in (sns.get("MessageAttributes") or {}).items()}
    try:
        body = json.loads(sns.get("Message") or "")
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None

    def value(name: str) -> Any:
        return body.get(name) or attributes.get(name)

    if not value("Type") or not (value("InitialContactId") or value("ContactId")):
        return None
    return StreamEvent(
        id=body.get("Id"), type=str(value("Type")), content_type=str(value("ContentType") or ""),
        role=value("ParticipantRole"), content=body.get("Content"),
        initial_contact_id=value("InitialContactId"), contact_id=value("ContactId"),
        visibility=str(attributes.get("MessageVisibility") or body.get("MessageVisibility") or "ALL"),
    )


def _expiry(value: str | None) -> int:
    try:
        return int(datetime.fromisoformat((value or "").replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0  # unknown: treat as expired and renew when next used


def _code(error: Exception) -> str:
    return error.response.get("Error", {}).get("Code", "Unknown") if isinstance(error, ClientError) else type(error).__name__


# --- the desk -----------------------------------------------------------------------------------
@dataclass
class ConnectDesk:
    chats: Any  # coexist.store.chats.ChatRepository
    messages: Any  # coexist.store.messages.MessageStore
    contacts: Any  # coexist.store.contacts.ContactStore
    workflow: Any  # coexist.conversation.workflow.Workflow
    outbox: Any  # coexist.outbound.outbox.Outbox
    clients: Callable[[str], Any]  # "connect" | "connectparticipant" -> boto3 client
    number_config: Callable[[str], NumberConfig]  # a number's settings (COEXIST_NUMBERS)
    metrics: Callable[[str], None] = lambda name: None
    clock: Callable[[], float] = time.time
    environ: Any = field(default_factory=lambda: os.environ)  # CONNECT_* defaults

    def handles(self, phone_number_id: str) -> bool:
        """Does this number hand escalations to Connect? (Only the provider is read here: a wrong
        setting surfaces in the handoff, which then falls back to the built-in directory.)"""
        try:
            return self.number_config(phone_number_id).hands_to_connect
        except ValueError:
            return False

    def humans(self, phone_number_id: str) -> ConnectHumans | None:
        return humans_for(self.number_config(phone_number_id), self.environ)

    # --- the workflow's steps ---------------------------------------------------------------------
    def hand_over(self, chat_id: str, conversation_id: str) -> dict:
        """Start the contact; {"handed": False} means: route with the built-in directory instead."""
        chat = self.chats.get(chat_id)
        # One handoff per escalation: a retried step repeats the same Connect calls (same tokens).
        handoff_key = f"{conversation_id}\n{chat.queued_at or ''}"
        if chat.connect_handoff_key == handoff_key and chat.connect_connection_token:
            return {"handed": True}
        try:
            humans = self.humans(chat.phone_number_id)
        except ValueError:
            humans = None
        if humans is None:
            self.metrics("ConnectHandoffFailed")
            return {"handed": False, "reason": "configuration"}
        contact_id = None
        try:
            started = self.clients("connect").start_chat_contact(**self._start_request(chat_id, chat, humans, handoff_key))
            contact_id = started["ContactId"]
            # The map first: once streaming starts, events may arrive at any moment.
            self.chats.map_contact(contact_id, chat_id, conversation_id)
            self.chats.hand_to_connect(chat_id, contact_id, humans.instance_id, conversation_id, handoff_key,
                                       started["ParticipantToken"])
            self.clients("connect").start_contact_streaming(
                InstanceId=humans.instance_id, ContactId=contact_id,
                ChatStreamingConfiguration={"StreamingEndpointArn": humans.streaming_topic_arn},
                ClientToken=client_token("stream", handoff_key),
            )
            self._connect_customer(chat_id, started["ParticipantToken"])
        except (ClientError, BotoCoreError) as error:
            # Rather the built-in directory than a customer nobody sees: undo, count, fall back.
            self.metrics("ConnectHandoffFailed")
            if contact_id:
                self._stop(humans.instance_id, contact_id)
            self.chats.connect_failed(chat_id)
            return {"handed": False, "reason": _code(error)}
        self.metrics("ConversationHandedToConnect")
        return {"handed": True}

    def await_end(self, chat_id: str, conversation_id: str, token: str) -> None:
        """Park the workflow until the contact ends. It may have ended already (the flow can end a
        chat at once, e.g. out of hours): whoever comes second takes the token."""
        self.chats.park_token(chat_id, conversation_id, WaitingFor.CONNECT, token)
        chat = self.chats.get(chat_id)
        if chat is not None and chat.connect_ended_at:
            taken = self.chats.take_token(chat_id, WaitingFor.CONNECT)
            if taken:
                self.workflow.succeed(taken, CLOSE)

    def leave(self, chat_id: str, chat: Chat) -> None:
        """The conversation closes: end a contact still open (our timeout) and drop the credentials."""
        if not chat.connect_contact_id or chat.connect_conversation_id != chat.conversation_id:
            return  # no contact in this conversation (one of an earlier conversation is over already)
        if not chat.connect_ended_at:
            self._stop(chat.connect_instance_id or "", chat.connect_contact_id)
        self.chats.leave_connect(chat_id, chat.connect_ended_at)

    def end_contact(self, instance_id: str, contact_id: str) -> None:
        """End a contact whose conversation is over elsewhere (a merge kept the other chat's): the
        agent in Connect is not left talking into a chat nobody reads. One already ended is not an error."""
        self._stop(instance_id, contact_id)

    # --- from ingest ----------------------------------------------------------------------------
    @staticmethod
    def is_active(chat: Chat | None) -> bool:
        """A contact of the live conversation holds the chat."""
        return chat is not None and chat.in_connect_contact

    def relay(self, chat_id: str, message_id: str, chat: Chat | None = None) -> str:
        """Post a new customer message into the contact. Returns what happened."""
        chat = chat if chat is not None else self.chats.get(chat_id)
        if not self.is_active(chat):
            return "not_in_connect"
        message = from_item_value(self.messages.get(message_id) or {})
        content = message_content(message) if message else "[message]"
        token = chat.connect_connection_token
        try:
            if not token or (chat.connect_connection_expires_at or 0) <= self.clock() + TOKEN_MARGIN_S:
                token = self._connect_customer(chat_id, chat.connect_participant_token or "")
            try:
                self._post(token, content, message_id)
            except ClientError as error:
                if _code(error) != "AccessDeniedException":
                    raise
                # The connection token was refused before its stated expiry: renew it once.
                self._post(self._connect_customer(chat_id, chat.connect_participant_token or ""), content, message_id)
        except ClientError as error:
            if _code(error) == "AccessDeniedException":
                # Not even the participant token is accepted: the contact is over and we missed its end.
                self._ended(chat_id)
                return "connect_ended"
            self.metrics("ConnectRelayFailed")  # the SDK retried already; the inbox keeps the message
            return "relay_failed"
        except BotoCoreError:
            self.metrics("ConnectRelayFailed")
            return "relay_failed"
        self.metrics("ConnectMessageRelayed")
        return "relayed_to_connect"

    def _post(self, connection_token: str, content: str, message_id: str) -> None:
        self.clients("connectparticipant").send_message(
            ContentType="text/plain", Content=content[:CONTENT_MAX], ConnectionToken=connection_token,
            ClientToken=client_token("relay", message_id),  # a redelivered message is posted once
        )

    # --- from the streaming topic ------------------------------------------------------------------
    def apply(self, event: StreamEvent) -> str:
        """One streaming event. Safe to repeat: replies are keyed by the event id, the end by the token."""
        chat_id = next((c for c in map(self.chats.chat_of_contact, event.contact_ids) if c), None)
        if chat_id is None:
            self.metrics("ConnectEventUnknownContact")
            return "unknown_contact"
        chat = self.chats.get(chat_id)
        if chat is None or chat.connect_contact_id not in event.contact_ids:
            return "stale_contact"  # a contact of an earlier handoff: it has no say over this one
        if event.content_type == CHAT_ENDED:
            self._ended(chat_id)
            return "ended"
        if event.content_type == PARTICIPANT_LEFT:
            if event.role == AGENT:
                # Noted, not the end: on a transfer the agent leaves and another joins; Connect
                # reports the end of the chat itself (chat.ended).
                self.chats.note_connect_agent_left(chat_id)
                return "agent_left"
            return "ignored"
        if event.type != "MESSAGE":
            return "ignored"  # typing, joined, read receipts...
        if event.role == CUSTOMER:
            return "own_message"  # our relays (and the transcript) coming back
        if event.visibility == AGENT or event.role not in (AGENT, SYSTEM):
            return "ignored"
        if event.content_type not in TEXT_CONTENT or not (event.content or "").strip():
            self.metrics("ConnectReplyUnsupported")
            return "unsupported"
        if event.role == SYSTEM:
            humans = self._humans_or_none(chat_id)
            if not (humans and humans.relay_system_messages):
                return "ignored"
        return self._reply(chat_id, event)

    def _reply(self, chat_id: str, event: StreamEvent) -> str:
        source = Source.AGENT if event.role == AGENT else Source.BOT
        text = event.content.strip()
        parts = [text[i:i + TEXT_MAX] for i in range(0, len(text), TEXT_MAX)]
        try:
            for n, part in enumerate(parts):
                key = f"connect:{event.id or client_token('event', text)}" + (f":{n}" if n else "")
                self.outbox.send(chat_id, parse_send_request({"type": "text", "text": part}), source=source,
                                 idempotency_key=key, sent_by="amazon-connect")
        except Refused:
            # Outside the customer-service window a free-form reply is refused (docs/ARCHITECTURE.md rule 2).
            self.metrics("ConnectReplyRefused")
            return "refused"
        if source == Source.AGENT:
            self.chats.note_first_human_reply(chat_id)
        self.metrics("ConnectReplySent")
        return "sent"

    # --- helpers ----------------------------------------------------------------------------------
    def _start_request(self, chat_id: str, chat: Chat, humans: ConnectHumans, handoff_key: str) -> dict:
        name = display_name(self.contacts.get(chat.phone_number_id, chat.chat_id)) or DEFAULT_DISPLAY_NAME
        attributes = {
            "channel": "whatsapp",
            "phone_number_id": chat.phone_number_id,
            "coexist_conversation_id": chat.conversation_id or "",
            "customer_ref": customer_ref(chat_id, humans.reference_salt),
        }
        if chat.bot_intent:
            attributes["bot_intent"] = chat.bot_intent
        if humans.share_customer_number and chat.wa_id:
            attributes["customer_number"] = chat.wa_id
        request = {
            "InstanceId": humans.instance_id,
            "ContactFlowId": humans.contact_flow_id,
            "Attributes": attributes,
            "ParticipantDetails": {"DisplayName": name[:DISPLAY_NAME_MAX]},
            "InitialMessage": {"ContentType": "text/plain", "Content": self._transcript(chat_id, chat, humans)},
            "ClientToken": client_token("start", handoff_key),
        }
        if humans.chat_duration_minutes:
            request["ChatDurationInMinutes"] = humans.chat_duration_minutes
        return request

    def _transcript(self, chat_id: str, chat: Chat, humans: ConnectHumans) -> str:
        started = (chat.conversation_started_at or 0) - START_GRACE_S
        # Newest first, a few more than needed: agent/app messages in between are not shown.
        items = self.messages.latest_for_chat(chat_id, humans.transcript_messages * 3)
        mine = [m for m in map(from_item_value, items) if int(m.get("timestamp") or 0) >= started]
        return transcript_summary(mine, chat.bot_intent, humans.transcript_messages, humans.transcript_chars)

    def _connect_customer(self, chat_id: str, participant_token: str) -> str:
        """A connection for the customer participant; its token is what SendMessage takes."""
        created = self.clients("connectparticipant").create_participant_connection(
            Type=["CONNECTION_CREDENTIALS"], ParticipantToken=participant_token, ConnectParticipant=True,
        )
        credentials = created["ConnectionCredentials"]
        self.chats.store_connection(chat_id, credentials["ConnectionToken"], _expiry(credentials.get("Expiry")))
        return credentials["ConnectionToken"]

    def _ended(self, chat_id: str) -> None:
        """The contact is over: note it, then end the workflow's wait if it is waiting already."""
        self.chats.note_connect_ended(chat_id)
        token = self.chats.take_token(chat_id, WaitingFor.CONNECT)
        if token:
            self.workflow.succeed(token, CLOSE)
        self.metrics("ConnectContactEnded")

    def _stop(self, instance_id: str, contact_id: str) -> None:
        try:
            self.clients("connect").stop_contact(InstanceId=instance_id, ContactId=contact_id)
        except ClientError as error:
            if _code(error) not in _GONE:
                self.metrics("ConnectStopFailed")  # it ends on its own at ChatDurationInMinutes
        except BotoCoreError:
            self.metrics("ConnectStopFailed")

    def _humans_or_none(self, chat_id: str) -> ConnectHumans | None:
        chat = self.chats.get(chat_id)
        number = chat.phone_number_id if chat else ""
        try:
            return self.humans(number)
        except ValueError:
            return None
