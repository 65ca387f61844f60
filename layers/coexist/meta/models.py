"""Typed models of Meta's WhatsApp webhook payloads.

Built from Meta's published examples (tests/fixtures/meta). Every model keeps unknown fields
(`extra="allow"`): Meta adds fields without notice and a field we do not model yet must survive to
the archive and the raw copy on the message, never fail ingest.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MetaModel(BaseModel):
    # Payloads carry message bodies, names and phone numbers: a validation error (which can end up
    # in a log line or a trace) names the field and the problem, never the value.
    model_config = ConfigDict(extra="allow", populate_by_name=True, hide_input_in_errors=True)


def _unix_seconds(value: Any) -> int:
    """Meta sends timestamps as strings of unix seconds (sometimes as numbers)."""
    return int(value)


class Metadata(MetaModel):
    display_phone_number: str
    phone_number_id: str


class MetaError(MetaModel):
    code: int
    title: str | None = None
    message: str | None = None
    error_data: dict[str, Any] | None = None
    href: str | None = None

    @property
    def details(self) -> str | None:
        return (self.error_data or {}).get("details")


class Profile(MetaModel):
    name: str | None = None
    username: str | None = None  # the user's WhatsApp username, when they adopted one (it changes)


class Contact(MetaModel):
    # Meta's "Business-scoped user IDs" page: `wa_id` is absent for a user with a username who hides
    # their number; `user_id` (the BSUID) is always sent; `parent_user_id` with linked portfolios.
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    profile: Profile | None = None


class MessageContext(MetaModel):
    id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None


class Referral(MetaModel):
    """Where a customer came from: a click-to-WhatsApp ad or a Page call-to-action."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    headline: str | None = None
    body: str | None = None
    ctwa_clid: str | None = None


class Text(MetaModel):
    body: str


class Media(MetaModel):
    id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    caption: str | None = None
    filename: str | None = None
    voice: bool | None = None
    animated: bool | None = None
    url: str | None = None


class Location(MetaModel):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ButtonReply(MetaModel):
    id: str
    title: str


class ListReply(MetaModel):
    id: str
    title: str
    description: str | None = None


class Interactive(MetaModel):
    type: str
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None
    nfm_reply: dict[str, Any] | None = None


class TemplateButton(MetaModel):
    """A tap on a quick-reply button of a template message."""

    text: str | None = None
    payload: str | None = None


class Reaction(MetaModel):
    message_id: str
    emoji: str | None = None  # absent or empty: the reaction was removed


class EditedMessage(MetaModel):
    original_message_id: str
    message: dict[str, Any] | None = None


class RevokedMessage(MetaModel):
    original_message_id: str


class HistoryContext(MetaModel):
    status: str | None = None


class Message(MetaModel):
    """One message in `messages`, `message_echoes` or a `history` thread."""

    from_: str | None = Field(default=None, alias="from")
    from_user_id: str | None = None  # BSUID, sent beside (or, for hidden numbers, instead of) `from`
    from_parent_user_id: str | None = None  # assumed by analogy with `recipient_parent_user_id`
    to: str | None = None
    to_user_id: str | None = None
    id: str
    timestamp: int
    type: str
    context: MessageContext | None = None
    referral: Referral | None = None
    errors: list[MetaError] = Field(default_factory=list)
    text: Text | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] | None = None
    interactive: Interactive | None = None
    button: TemplateButton | None = None
    reaction: Reaction | None = None
    order: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    edit: EditedMessage | None = None
    revoke: RevokedMessage | None = None
    history_context: HistoryContext | None = None

    _ts = field_validator("timestamp", mode="before")(_unix_seconds)

    def content(self) -> dict[str, Any] | list[Any] | None:
        """The type-specific object, exactly as Meta sent it."""
        raw = (self.model_extra or {}).get(self.type)
        if raw is not None:
            return raw
        value = getattr(self, self.type, None) if self.type in type(self).model_fields else None
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(value, list):
            return [v.model_dump(mode="json", exclude_none=True) if isinstance(v, BaseModel) else v for v in value]
        return value

    def is_modelled_type(self) -> bool:
        return self.type in KNOWN_MESSAGE_TYPES


KNOWN_MESSAGE_TYPES = frozenset(
    {
        "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
        "interactive", "button", "reaction", "order", "system", "unsupported", "unknown",
        "edit", "revoke", "media_placeholder", "request_welcome",
    }
)


class Conversation(MetaModel):
    id: str | None = None
    expiration_timestamp: int | None = None
    origin: dict[str, Any] | None = None


class Pricing(MetaModel):
    billable: bool | None = None
    pricing_model: str | None = None  # PMP since 2025-07-01, CBP before
    type: str | None = None  # regular | free_customer_service | free_entry_point
    category: str | None = None


class Status(MetaModel):
    id: str
    status: str
    timestamp: int
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    recipient_parent_user_id: str | None = None
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    errors: list[MetaError] = Field(default_factory=list)
    biz_opaque_callback_data: str | None = None

    _ts = field_validator("timestamp", mode="before")(_unix_seconds)


class MessagesValue(MetaModel):
    """`messages` field: customer messages and delivery statuses of what the business sent."""

    messaging_product: str | None = None
    metadata: Metadata
    contacts: list[Contact] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)
    errors: list[MetaError] = Field(default_factory=list)


class EchoesValue(MetaModel):
    """`smb_message_echoes`: what a person sent from the WhatsApp Business App."""

    messaging_product: str | None = None
    metadata: Metadata
    message_echoes: list[Message] = Field(default_factory=list)


class HistoryChunkMetadata(MetaModel):
    phase: int
    chunk_order: int
    progress: int


class HistoryThread(MetaModel):
    id: str  # the customer's WhatsApp id (a phone number, or a BSUID for a customer who hides it)
    user_id: str | None = None  # assumed: the BSUID beside a phone-number thread id
    messages: list[Message] = Field(default_factory=list)


class HistoryChunk(MetaModel):
    metadata: HistoryChunkMetadata | None = None
    threads: list[HistoryThread] = Field(default_factory=list)
    errors: list[MetaError] = Field(default_factory=list)


class HistoryValue(MetaModel):
    """`history`: chunks of past threads, or (with `messages`) media content of earlier placeholders."""

    messaging_product: str | None = None
    metadata: Metadata
    history: list[HistoryChunk] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)


class AppContact(MetaModel):
    full_name: str | None = None
    first_name: str | None = None
    phone_number: str
    user_id: str | None = None  # assumed: the BSUID of the saved contact, when Meta knows it


class StateSyncMetadata(MetaModel):
    timestamp: int

    _ts = field_validator("timestamp", mode="before")(_unix_seconds)


class StateSyncItem(MetaModel):
    type: str
    action: str
    contact: AppContact | None = None
    metadata: StateSyncMetadata | None = None


class StateSyncValue(MetaModel):
    """`smb_app_state_sync`: the phone's address book, added (or edited) and removed."""

    messaging_product: str | None = None
    metadata: Metadata
    state_sync: list[StateSyncItem] = Field(default_factory=list)


class WabaInfo(MetaModel):
    waba_id: str | None = None
    owner_business_id: str | None = None


class DisconnectionInfo(MetaModel):
    reason: str | None = None
    initiated_by: str | None = None


class AccountUpdateValue(MetaModel):
    event: str
    waba_info: WabaInfo | None = None
    disconnection_info: DisconnectionInfo | None = None
    phone_number: str | None = None


class PhoneNumberQualityUpdateValue(MetaModel):
    """A number's quality or the portfolio's messaging limit changed. Shape from Meta's
    `phone_number_quality_update` reference (May 2026), not from a captured webhook: `current_limit`
    (`TIER_2K`, …; Meta drops it in favour of `max_daily_conversations_per_business`, the number
    itself, -1 for unlimited) and `event` (UPGRADE, DOWNGRADE, FLAGGED, UNFLAGGED, …)."""

    display_phone_number: str | None = None
    event: str | None = None
    old_limit: str | None = None
    current_limit: str | None = None
    max_daily_conversations_per_business: int | str | None = None


class BusinessCapabilityUpdateValue(MetaModel):
    """The portfolio's capabilities (Meta's `business_capability_update` reference, May 2026; not a
    captured webhook): `max_daily_conversations_per_business` is the messaging limit, -1 unlimited."""

    max_daily_conversations_per_business: int | str | None = None
    max_daily_conversation_per_phone: int | str | None = None


class Change(MetaModel):
    # Meta's own example of PARTNER_APP_UNINSTALLED puts `field` inside `value`; cope with both.
    field: str | None = None
    value: dict[str, Any] = Field(default_factory=dict)

    @property
    def field_name(self) -> str | None:
        return self.field or self.value.get("field")


class Entry(MetaModel):
    id: str
    time: int | None = None
    changes: list[Change] = Field(default_factory=list)


class WebhookEnvelope(MetaModel):
    # Meta's PARTNER_ADDED example has no `object`; when present it must be this value.
    object: str | None = None
    entry: list[Entry]

    @field_validator("object")
    @classmethod
    def _whatsapp_only(cls, value: str | None) -> str | None:
        if value is not None and value != "whatsapp_business_account":
            raise ValueError(f"not a WhatsApp Business Account webhook: object={value!r}")
        return value


VALUE_MODELS: dict[str, type[MetaModel]] = {
    "messages": MessagesValue,
    "smb_message_echoes": EchoesValue,
    "history": HistoryValue,
    "smb_app_state_sync": StateSyncValue,
    "account_update": AccountUpdateValue,
    "phone_number_quality_update": PhoneNumberQualityUpdateValue,
    "business_capability_update": BusinessCapabilityUpdateValue,
}
