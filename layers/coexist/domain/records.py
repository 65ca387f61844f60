"""What one webhook means for the inbox, as plain records the repositories persist.

`interpret` (in interpret.py) turns Meta's envelope into these; persisting them is idempotent, so a
duplicate or replayed webhook writes the same facts again and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from coexist.domain.identity import IdentityChange, Identifiers

INBOUND = "inbound"
OUTBOUND = "outbound"

class Source(StrEnum):
    """Who produced a message."""

    CUSTOMER = "customer"
    BUSINESS_APP = "business_app"  # a person on the phone app (an echo)
    HISTORY = "history"  # imported from the phone at onboarding
    AGENT = "agent"  # an agent, from the inbox or Amazon Connect
    BOT = "bot"
    CAMPAIGN = "campaign"
    API = "api"  # another system, through the API
    UNKNOWN = "unknown"  # a status arrived for a message this system never recorded


CUSTOMER, BUSINESS_APP, HISTORY, UNKNOWN_SENDER = Source.CUSTOMER, Source.BUSINESS_APP, Source.HISTORY, Source.UNKNOWN


class AboutCustomer:
    """A record about one customer of a business number, as the webhook named them (`who`).

    Ingest resolves `who` to the customer and fills in `chat_id`, the customer's opaque id, before
    anything is written; until then `chat_id` is empty. `wa_id` is the phone number when the webhook
    gave one (a customer with a username may have none).
    """

    phone_number_id: str
    wa_id: str | None
    who: Identifiers | None
    chat_id: str

    @property
    def identifiers(self) -> Identifiers:
        return self.who or Identifiers.of(self.phone_number_id, self.wa_id)


@dataclass
class MessageRecord(AboutCustomer):
    id: str
    phone_number_id: str
    wa_id: str | None  # None: the customer hides the number
    direction: str
    source: str
    type: str
    timestamp: int
    text: str | None
    content: Any
    context_id: str | None = None
    referral: dict | None = None
    errors: list[dict] = field(default_factory=list)
    status: str | None = None  # initial status (history); live ones get theirs from statuses
    history_status: str | None = None  # history_context.status as Meta sent it
    who: Identifiers | None = None
    chat_id: str = ""


@dataclass
class StatusUpdate(AboutCustomer):
    message_id: str
    phone_number_id: str
    wa_id: str | None
    status: str
    timestamp: int
    errors: list[dict] = field(default_factory=list)
    pricing: dict | None = None
    conversation: dict | None = None
    callback_data: str | None = None  # biz_opaque_callback_data: what the sender attached to the send
    who: Identifiers | None = None
    chat_id: str = ""


@dataclass
class MessageEdit(AboutCustomer):
    """The Business App edited one of its earlier messages."""

    original_id: str
    phone_number_id: str
    wa_id: str | None  # None: the customer hides the number
    timestamp: int
    type: str
    content: Any
    text: str | None
    who: Identifiers | None = None
    chat_id: str = ""


@dataclass
class MessageRevoke(AboutCustomer):
    """The Business App deleted one of its earlier messages for everyone."""

    original_id: str
    phone_number_id: str
    wa_id: str | None
    timestamp: int
    who: Identifiers | None = None
    chat_id: str = ""


@dataclass
class MediaArrival:
    """History media content for an earlier `media_placeholder`, arriving in its own webhook."""

    message: MessageRecord


@dataclass
class ChatActivity(AboutCustomer):
    """The latest facts about a chat seen in one webhook; persisted as "raise to at least"."""

    phone_number_id: str
    wa_id: str | None  # None: the customer hides the number
    last_message_at: int | None = None
    last_customer_message_at: int | None = None
    last_app_activity_at: int | None = None
    referral_at: int | None = None
    who: Identifiers | None = None
    chat_id: str = ""

    def merge(self, other: "ChatActivity") -> None:
        for name in ("last_message_at", "last_customer_message_at", "last_app_activity_at", "referral_at"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None and (mine is None or theirs > mine):
                setattr(self, name, theirs)


@dataclass
class ContactProfile(AboutCustomer):
    phone_number_id: str
    wa_id: str | None  # None: the customer hides the number
    profile_name: str | None
    user_id: str | None
    seen_at: int
    who: Identifiers | None = None
    chat_id: str = ""


@dataclass
class AppContactChange(AboutCustomer):
    phone_number_id: str
    wa_id: str | None  # None: the customer hides the number
    action: str  # add (also edit) | remove
    full_name: str | None
    first_name: str | None
    timestamp: int
    who: Identifiers | None = None
    chat_id: str = ""


@dataclass
class HistoryChunkImported:
    phone_number_id: str
    phase: int
    chunk_order: int
    progress: int
    message_count: int


@dataclass
class HistoryDeclined:
    phone_number_id: str
    code: int
    details: str | None


@dataclass
class NumberSeen:
    phone_number_id: str
    display_phone_number: str
    waba_id: str | None
    app_activity_at: int | None = None  # an echo: someone used the phone app
    coexistence_evidence: bool = False  # echoes, history and app-state sync only exist in coexistence


@dataclass
class AccountEvent:
    waba_id: str
    event: str
    time: int | None
    phone_number: str | None
    disconnection: dict | None
    raw: dict


@dataclass(frozen=True)
class MessagingLimitUpdate:
    """Meta's word on a portfolio's messaging limit (unique customers per rolling 24 h, -1 unlimited)
    and on a number's quality; either may be absent."""

    portfolio: str  # the WhatsApp Business Account the webhook came for
    time: int
    limit: int | None
    quality: str | None


@dataclass
class Unhandled:
    """A change this version does not model (an unknown field, or a value that fails validation)."""

    field: str | None
    reason: str
    raw: dict


@dataclass
class Interpretation:
    messages: list[MessageRecord] = field(default_factory=list)
    history_messages: list[MessageRecord] = field(default_factory=list)
    media_arrivals: list[MediaArrival] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    edits: list[MessageEdit] = field(default_factory=list)
    revokes: list[MessageRevoke] = field(default_factory=list)
    chats: dict[Identifiers, ChatActivity] = field(default_factory=dict)
    profiles: dict[Identifiers, ContactProfile] = field(default_factory=dict)
    app_contacts: list[AppContactChange] = field(default_factory=list)
    history_chunks: list[HistoryChunkImported] = field(default_factory=list)
    history_declined: list[HistoryDeclined] = field(default_factory=list)
    numbers: dict[str, NumberSeen] = field(default_factory=dict)
    account_events: list[AccountEvent] = field(default_factory=list)
    messaging_limits: list[MessagingLimitUpdate] = field(default_factory=list)
    unhandled: list[Unhandled] = field(default_factory=list)
    unknown_message_types: list[str] = field(default_factory=list)
    identity_changes: list[IdentityChange] = field(default_factory=list)

    def about_customers(self) -> list[AboutCustomer]:
        """Every record naming a customer: ingest resolves each to its chat before writing."""
        return [
            *self.messages, *self.history_messages, *(a.message for a in self.media_arrivals), *self.statuses,
            *self.edits, *self.revokes, *self.chats.values(), *self.profiles.values(), *self.app_contacts,
        ]

    def touch_chat(self, activity: ChatActivity) -> None:
        key = activity.identifiers
        if key in self.chats:
            self.chats[key].merge(activity)
        else:
            self.chats[key] = activity

    def see_number(self, seen: NumberSeen) -> None:
        known = self.numbers.get(seen.phone_number_id)
        if known is None:
            self.numbers[seen.phone_number_id] = seen
            return
        if seen.app_activity_at and (known.app_activity_at or 0) < seen.app_activity_at:
            known.app_activity_at = seen.app_activity_at
        known.coexistence_evidence |= seen.coexistence_evidence
        known.waba_id = known.waba_id or seen.waba_id
