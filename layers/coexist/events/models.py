"""One model per domain event, versioned, with a deterministic id.

Every event is published with `source` "coexist", `detail-type` its `type`, and its model as the
`detail`. Consumers dedupe by `id`: it is derived from the fact itself (a wamid and a status, a
chat's conversation and what happened to it), so the same fact published twice (a retried
webhook, a retried step) carries the same id. A breaking change of a model is a new `version`,
announced in docs/EVENTS.md; fields are only added within a version.

Events carry ids, never message text, unless the deployment allows it (`CRM_EVENTS_INCLUDE_TEXT`):
the fields listed in `TEXT_FIELDS` are dropped by the publisher otherwise.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coexist.resources import EVENT_SOURCE

SOURCE = EVENT_SOURCE


def iso(unix_seconds: int | float) -> str:
    return datetime.fromtimestamp(unix_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class DomainEvent(BaseModel):
    """What every event carries."""

    # Each model's validator is built when first used: a function publishes a few of these, and
    # building all of them cost every cold start that imports this module tens of milliseconds.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True, defer_build=True)

    # The fields whose values name the fact: the event's id is derived from them and its type.
    IDENTITY: ClassVar[tuple[str, ...]] = ()
    # Fields that may hold what a person wrote: published only when the deployment allows it.
    TEXT_FIELDS: ClassVar[tuple[str, ...]] = ()

    id: str = Field(description="Deterministic: the same fact always has the same id. Deduplicate on it.")
    type: str
    version: int
    occurred_at: str = Field(description="When it happened (ISO 8601, UTC).")
    phone_number_id: str = Field(description="The business number (Meta's phone number id).")

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("id"):
            event_type = cls.model_fields["type"].default
            parts = [str(event_type)] + [str(data.get(name, "")) for name in cls.IDENTITY]
            data = {**data, "id": hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]}
        return data


class MessageReceived(DomainEvent):
    """A customer wrote to the business number."""

    IDENTITY = ("message_id",)
    TEXT_FIELDS = ("text",)
    type: Literal["message.received"] = "message.received"
    version: Literal[1] = 1
    chat_id: str = Field(description="The customer's opaque id (also the chat's id).")
    message_id: str = Field(description="Meta's wamid.")
    message_type: str = Field(description="text, image, button, interactive, …")
    reply_id: str | None = Field(None, description="The tapped button's or list row's id, for a reply.")
    context_message_id: str | None = Field(None, description="The message this one answers, if any.")
    text: str | None = Field(None, description="The text; only with CRM_EVENTS_INCLUDE_TEXT=true.")


class _MessageStatus(DomainEvent):
    IDENTITY = ("message_id",)
    chat_id: str | None = Field(None, description="The customer's opaque id, when known.")
    message_id: str = Field(description="Meta's wamid of the message sent.")
    coexist_message_id: str | None = Field(None, description="Our id of the message (sent through Coexist).")
    pricing_category: str | None = Field(None, description="Meta's pricing category, on the status that carries it.")


class MessageSent(_MessageStatus):
    """Meta sent a business message to the customer."""

    type: Literal["message.sent"] = "message.sent"
    version: Literal[1] = 1


class MessageDelivered(_MessageStatus):
    """The customer's phone received a business message."""

    type: Literal["message.delivered"] = "message.delivered"
    version: Literal[1] = 1


class MessageRead(_MessageStatus):
    """The customer read a business message."""

    type: Literal["message.read"] = "message.read"
    version: Literal[1] = 1


class MessageFailed(_MessageStatus):
    """Meta could not deliver a business message, or Coexist gave up sending it (`reason`)."""

    type: Literal["message.failed"] = "message.failed"
    version: Literal[1] = 1
    error_codes: list[int] = Field(default_factory=list, description="Meta's error codes (e.g. 131049).")
    reason: str | None = Field(None, description="Why Coexist failed it, when it did (window_closed, retries_exhausted: …); "
                               "message_id is then Coexist's id if Meta never took the message.")


STATUS_EVENTS: dict[str, type[_MessageStatus]] = {
    "sent": MessageSent, "delivered": MessageDelivered, "read": MessageRead, "failed": MessageFailed,
}


class _ChatEvent(DomainEvent):
    chat_id: str = Field(description="The customer's opaque id (also the chat's id).")
    conversation_id: str | None = Field(None, description="The conversation (one workflow run), when one is live.")


class ChatQueued(_ChatEvent):
    """The chat waits for a person (the bot escalated, an agent released or transferred it)."""

    IDENTITY = ("chat_id", "conversation_id", "occurred_at")
    type: Literal["chat.queued"] = "chat.queued"
    version: Literal[1] = 1


class ChatAssigned(_ChatEvent):
    """An agent took the chat."""

    IDENTITY = ("chat_id", "conversation_id", "agent_id", "occurred_at")
    type: Literal["chat.assigned"] = "chat.assigned"
    version: Literal[1] = 1
    agent_id: str = Field(description="The agent of the directory (Cognito user) who holds the chat.")


class ChatClosed(_ChatEvent):
    """The conversation ended (closed, or a timeout ended it)."""

    IDENTITY = ("chat_id", "conversation_id", "occurred_at")
    type: Literal["chat.closed"] = "chat.closed"
    version: Literal[1] = 1
    closed_by: Literal["workflow", "agent"] = Field(description="The conversation's end, or an agent closing an idle chat.")
    agent_id: str | None = Field(None, description="The agent who held the chat, if any.")
    satisfaction_score: int | None = Field(
        None, description="The satisfaction score, when the conversation recorded one before it closed; a score "
        "given in the survey after the close arrives as chat.satisfaction_recorded.")


class ChatSatisfactionRecorded(_ChatEvent):
    """The customer answered the satisfaction survey (CSAT), after the conversation closed."""

    IDENTITY = ("chat_id", "conversation_id")
    type: Literal["chat.satisfaction_recorded"] = "chat.satisfaction_recorded"
    version: Literal[1] = 1
    score: int = Field(description="The score the customer chose (1–5).")


class ChatTakenOver(_ChatEvent):
    """A person took the chat: someone answered from the WhatsApp Business App on the phone, or an
    agent replied from the inbox while the bot or the phone app held it."""

    IDENTITY = ("chat_id", "conversation_id", "by")
    type: Literal["chat.taken_over"] = "chat.taken_over"
    version: Literal[1] = 1
    by: Literal["app", "agent"] = Field(description="app: the WhatsApp Business App; agent: the agent inbox.")
    agent_id: str | None = Field(None, description="The agent, when by is agent.")


class ConsentChanged(DomainEvent):
    """A customer gave or withdrew consent to a kind of message."""

    IDENTITY = ("chat_id", "purpose", "granted", "evidence_id")
    type: Literal["consent.changed"] = "consent.changed"
    version: Literal[1] = 1
    chat_id: str = Field(description="The customer's opaque id.")
    purpose: str = Field(description="What the consent is for: marketing, reminders, …")
    granted: bool = Field(description="true: opted in; false: opted out.")
    source: str = Field(description="How it was given: keyword (STOP/START), meta_131050 (Meta refused a marketing "
                        "message because the customer stopped them), api, …")
    evidence_id: str | None = Field(None, description="The message or record that proves it.")


class LeadCaptured(DomainEvent):
    """A customer arrived from a click-to-WhatsApp ad (their message carries Meta's `referral`)."""

    IDENTITY = ("message_id",)
    type: Literal["lead.captured"] = "lead.captured"
    version: Literal[1] = 1
    chat_id: str = Field(description="The customer's opaque id.")
    message_id: str = Field(description="The wamid of the message that carried the referral.")
    ad_id: str | None = Field(None, description="Meta's source_id: the ad (or post) id.")
    source_type: str | None = Field(None, description="ad or post.")
    source_url: str | None = Field(None, description="The ad's or post's URL.")
    headline: str | None = Field(None, description="The ad's headline.")
    ctwa_clid: str | None = Field(None, description="The click id, for conversion reporting to Meta.")
    media_type: str | None = Field(None, description="image or video, when the ad had media.")


class CampaignFinished(DomainEvent):
    """A campaign has nothing left to send (it completed or was cancelled); a campaign cancelled
    after it completed, while its last messages still waited for the sender, is told again as cancelled."""

    IDENTITY = ("campaign_id", "outcome")  # completed, then cancelled: two facts
    type: Literal["campaign.finished"] = "campaign.finished"
    version: Literal[1] = 1
    campaign_id: str
    outcome: Literal["completed", "cancelled"]
    template_name: str | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="targeted, skipped, sent, delivered, read, failed, replied, …")


class ReminderAnswered(DomainEvent):
    """The customer tapped a button of a reminder (confirm, cancel, reschedule)."""

    IDENTITY = ("reminder_id", "message_id")
    type: Literal["reminder.answered"] = "reminder.answered"
    version: Literal[1] = 1
    reminder_id: str
    chat_id: str = Field(description="The customer's opaque id.")
    answer: Literal["confirmed", "cancelled", "reschedule_requested"]
    message_id: str = Field(description="The wamid of the customer's button reply.")


EVENTS: tuple[type[DomainEvent], ...] = (
    MessageReceived, MessageSent, MessageDelivered, MessageRead, MessageFailed,
    ChatQueued, ChatAssigned, ChatClosed, ChatSatisfactionRecorded, ChatTakenOver,
    ConsentChanged, LeadCaptured, CampaignFinished, ReminderAnswered,
)
