"""Turn one Meta webhook envelope into inbox records (see records.py).

Pure: no AWS, no clock. Loops over every entry, change and inner array, because Meta batches up to
1000 updates in one POST. A change that does not validate is returned as `Unhandled`, never raised,
so one odd change cannot block the others.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from coexist.domain import delivery, window
from coexist.domain.messaging_limit import limit_of
from coexist.domain.replies import reply_id  # noqa: F401  (ingest and events read it from here)
from coexist.domain.identity import USER_CHANGED_NUMBER, USER_CHANGED_USER_ID, IdentityChange, Identifiers
from coexist.domain.records import (
    BUSINESS_APP,
    CUSTOMER,
    HISTORY,
    INBOUND,
    OUTBOUND,
    AccountEvent,
    AppContactChange,
    ChatActivity,
    ContactProfile,
    HistoryChunkImported,
    HistoryDeclined,
    Interpretation,
    MediaArrival,
    MessageEdit,
    MessageRecord,
    MessageRevoke,
    MessagingLimitUpdate,
    NumberSeen,
    StatusUpdate,
    Unhandled,
)
from coexist.meta import models
from coexist.meta.models import Message

HISTORY_DECLINED_CODE = 2593109
_PHONE_LIKE = re.compile(r"\+?[\d\s\-().]+")


def normalize_wa_id(value: str) -> str:
    """Phone numbers arrive as "16505551234" or "+16505551234"; BSUIDs are kept as they are."""
    value = value.strip()
    if _PHONE_LIKE.fullmatch(value):
        return re.sub(r"\D", "", value)
    return value


def message_text(message_type: str, content) -> str | None:
    """The human-readable text of a message, for inbox lists and search (None if it has none)."""
    if not isinstance(content, dict):
        return None
    if message_type == "text":
        return content.get("body")
    if message_type in ("image", "video", "document", "audio", "sticker"):
        return content.get("caption")
    if message_type == "interactive":
        reply = content.get(content.get("type") or "") or {}
        return reply.get("title") if isinstance(reply, dict) else None
    if message_type == "button":
        return content.get("text")
    if message_type == "reaction":
        return content.get("emoji") or None
    if message_type == "location":
        return content.get("name") or content.get("address")
    return None


def interpret(envelope: models.WebhookEnvelope) -> Interpretation:
    result = Interpretation()
    for entry in envelope.entry:
        for change in entry.changes:
            _interpret_change(entry, change, result)
    return result


def _interpret_change(entry: models.Entry, change: models.Change, result: Interpretation) -> None:
    field = change.field_name
    model = models.VALUE_MODELS.get(field or "")
    if model is None:
        result.unhandled.append(Unhandled(field, "unknown field", change.model_dump(mode="json")))
        return
    try:
        value = model.model_validate(change.value)
    except ValidationError as error:
        reason = f"invalid {field} value: {error.error_count()} validation error(s)"
        result.unhandled.append(Unhandled(field, reason, change.model_dump(mode="json")))
        value = _salvage(model, change.value)
        if value is None:
            return
    handler = _HANDLERS[field]
    handler(entry, value, result)


def _salvage(model: type[models.MetaModel], raw: dict):
    """Keep the valid items of a change whose other items fail validation.

    The whole change is already archived as unhandled; this lets, say, 999 good messages of a
    batch reach the inbox when the thousandth is malformed.
    """
    cleaned = dict(raw)
    for name, field_info in model.model_fields.items():
        item_type = _list_item_type(field_info.annotation)
        if item_type is None or not isinstance(raw.get(name), list):
            continue
        kept = []
        for item in raw[name]:
            try:
                item_type.model_validate(item)
                kept.append(item)
            except ValidationError:
                continue
        cleaned[name] = kept
    try:
        return model.model_validate(cleaned)
    except ValidationError:
        return None


def _list_item_type(annotation):
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is list and args and isinstance(args[0], type) and issubclass(args[0], models.MetaModel):
        return args[0]
    return None


def _customer_of(message: Message, number: str, business: str | None = None) -> tuple[Identifiers, str]:
    """Who the customer of a message is, and its direction, from its sender and recipient."""
    sender = Identifiers.of(number, message.from_, message.from_user_id, message.from_parent_user_id)
    if not sender.empty and sender.wa_id != business:
        return sender, INBOUND
    return Identifiers.of(number, message.to, message.to_user_id), OUTBOUND


def _record(message: Message, who: Identifiers, direction: str, source: str) -> MessageRecord:
    content = message.content()
    return MessageRecord(
        id=message.id,
        phone_number_id=who.phone_number_id,
        wa_id=who.wa_id,
        who=who,
        direction=direction,
        source=source,
        type=message.type,
        timestamp=message.timestamp,
        text=message_text(message.type, content),
        content=content,
        context_id=message.context.id if message.context else None,
        referral=message.referral.model_dump(mode="json", exclude_none=True) if message.referral else None,
        errors=[_error(e) for e in message.errors],
    )


def _error(error: models.MetaError) -> dict:
    return {"code": error.code, "title": error.title, "message": error.message, "details": error.details}


def _note_unknown_type(message: Message, result: Interpretation) -> None:
    if not message.is_modelled_type():
        result.unknown_message_types.append(message.type)


def _contact_identifiers(number: str, contact: models.Contact) -> Identifiers:
    profile = contact.profile
    return Identifiers.of(
        number, contact.wa_id, contact.user_id, contact.parent_user_id, username=profile.username if profile else None
    )


class _Contacts:
    """The `contacts[]` of a messages value, found by any identifier of the customer they describe."""

    def __init__(self, number: str, contacts: list[models.Contact]):
        self.all = [(c, _contact_identifiers(number, c)) for c in contacts]

    def of(self, who: Identifiers) -> tuple[models.Contact | None, Identifiers | None]:
        for contact, ids in self.all:
            if set(ids.keys()) & set(who.keys()):
                return contact, ids
        if len(self.all) == 1 and who.empty:
            return self.all[0]
        return None, None


def _messages(entry: models.Entry, value: models.MessagesValue, result: Interpretation) -> None:
    number = value.metadata.phone_number_id
    result.see_number(NumberSeen(number, value.metadata.display_phone_number, entry.id))
    contacts = _Contacts(number, value.contacts)
    for message in value.messages:
        sender = Identifiers.of(number, message.from_, message.from_user_id, message.from_parent_user_id)
        contact, known = contacts.of(sender)
        who = sender.combined(known)
        if who.empty:
            result.unhandled.append(Unhandled("messages", "message without a sender", message.model_dump(mode="json", by_alias=True)))
            continue
        change = _identity_change(message, who)
        if change is not None:
            # Filed under the customer's new identifiers: a replayed notice finds the customer by
            # them once the old number no longer names anyone.
            result.identity_changes.append(change)
            who = change.after
        _note_unknown_type(message, result)
        result.messages.append(_record(message, who, INBOUND, CUSTOMER))
        opens = window.opens_window(message.type)
        result.touch_chat(
            ChatActivity(
                number,
                who.wa_id,
                last_message_at=message.timestamp,
                last_customer_message_at=message.timestamp if opens else None,
                referral_at=message.timestamp if message.referral else None,
                who=who,
            )
        )
        profile = ContactProfile(
            number,
            who.wa_id,
            profile_name=contact.profile.name if contact and contact.profile else None,
            user_id=who.user_id,
            seen_at=message.timestamp,
            who=who,
        )
        known_profile = result.profiles.get(who)
        if known_profile is None or known_profile.seen_at <= profile.seen_at:
            result.profiles[who] = profile
    for status in value.statuses:
        recipient = _status_recipient(number, status)
        recipient = recipient.combined(contacts.of(recipient)[1]) if not recipient.empty else recipient
        result.statuses.append(
            StatusUpdate(
                message_id=status.id,
                phone_number_id=number,
                wa_id=recipient.wa_id,
                status=status.status,
                timestamp=status.timestamp,
                errors=[_error(e) for e in status.errors],
                pricing=status.pricing.model_dump(mode="json", exclude_none=True) if status.pricing else None,
                conversation=status.conversation.model_dump(mode="json", exclude_none=True) if status.conversation else None,
                callback_data=status.biz_opaque_callback_data,
                who=None if recipient.empty else recipient,
            )
        )
    if value.errors:
        result.unhandled.append(Unhandled("messages", "value-level errors", value.model_dump(mode="json", by_alias=True)))


def _identity_change(message: Message, who: Identifiers) -> IdentityChange | None:
    """`user_changed_number` (verified: `system.wa_id` is the new number, `from` the old one) and
    `user_changed_user_id` (assumed by analogy: `system.user_id` is the new BSUID)."""
    system = message.system or {}
    kind = system.get("type")
    if message.type != "system" or kind not in (USER_CHANGED_NUMBER, USER_CHANGED_USER_ID):
        return None
    new = Identifiers.of(who.phone_number_id, system.get("wa_id") or system.get("new_wa_id"), system.get("user_id"))
    new_wa_id = new.wa_id if kind == USER_CHANGED_NUMBER else None
    new_user_id = new.user_id if kind == USER_CHANGED_USER_ID else None
    if not (new_wa_id or new_user_id):
        return None
    return IdentityChange(kind, who, new_wa_id, new_user_id, message.timestamp, message.id)


def _status_recipient(number: str, status: models.Status) -> Identifiers:
    return Identifiers.of(number, status.recipient_id, status.recipient_user_id, status.recipient_parent_user_id)


def _echoes(entry: models.Entry, value: models.EchoesValue, result: Interpretation) -> None:
    number = value.metadata.phone_number_id
    latest = max((m.timestamp for m in value.message_echoes), default=None)
    result.see_number(
        NumberSeen(number, value.metadata.display_phone_number, entry.id, app_activity_at=latest, coexistence_evidence=True)
    )
    for echo in value.message_echoes:
        who = Identifiers.of(number, echo.to, echo.to_user_id)
        if who.empty:
            result.unhandled.append(Unhandled("smb_message_echoes", "echo without a recipient", echo.model_dump(mode="json", by_alias=True)))
            continue
        wa_id = who.wa_id
        # An echo marks human activity on the chat but never touches the customer-service window.
        result.touch_chat(ChatActivity(number, wa_id, last_message_at=echo.timestamp, last_app_activity_at=echo.timestamp, who=who))
        if echo.type == "edit" and echo.edit:
            try:
                edited = models.Message.model_validate(
                    {"id": echo.edit.original_message_id, "timestamp": echo.timestamp, **(echo.edit.message or {"type": "unknown"})}
                )
            except ValidationError as error:
                # Kept like any other invalid item; the rest of the change is still ingested.
                reason = f"invalid edit: {error.error_count()} validation error(s)"
                result.unhandled.append(Unhandled("smb_message_echoes", reason, echo.model_dump(mode="json", by_alias=True)))
                continue
            content = edited.content()
            result.edits.append(
                MessageEdit(echo.edit.original_message_id, number, wa_id, echo.timestamp, edited.type, content,
                            message_text(edited.type, content), who=who)
            )
            continue
        if echo.type == "revoke" and echo.revoke:
            result.revokes.append(MessageRevoke(echo.revoke.original_message_id, number, wa_id, echo.timestamp, who=who))
            continue
        _note_unknown_type(echo, result)
        result.messages.append(_record(echo, who, OUTBOUND, BUSINESS_APP))


def _history(entry: models.Entry, value: models.HistoryValue, result: Interpretation) -> None:
    number = value.metadata.phone_number_id
    business = normalize_wa_id(value.metadata.display_phone_number)
    result.see_number(NumberSeen(number, value.metadata.display_phone_number, entry.id, coexistence_evidence=True))
    for chunk in value.history:
        for error in chunk.errors:
            if error.code == HISTORY_DECLINED_CODE:
                result.history_declined.append(HistoryDeclined(number, error.code, error.details))
            else:
                result.unhandled.append(Unhandled("history", f"history error {error.code}", chunk.model_dump(mode="json")))
        count = 0
        for thread in chunk.threads:
            who = Identifiers.of(number, thread.id, thread.user_id)
            latest = None
            for message in thread.messages:
                sender = message.from_ or message.from_user_id
                direction = OUTBOUND if sender and normalize_wa_id(sender) == business else INBOUND
                record = _record(message, who, direction, HISTORY)
                record.history_status = message.history_context.status if message.history_context else None
                record.status = delivery.history_status(record.history_status)
                result.history_messages.append(record)
                _note_unknown_type(message, result)
                latest = max(latest or 0, message.timestamp)
                count += 1
            # History fills the inbox but never opens a window nor wakes a bot.
            if latest is not None and not who.empty:
                result.touch_chat(ChatActivity(number, who.wa_id, last_message_at=latest, who=who))
        if chunk.metadata:
            meta = chunk.metadata
            result.history_chunks.append(HistoryChunkImported(number, meta.phase, meta.chunk_order, meta.progress, count))
    for message in value.messages:
        # Media content for an earlier `media_placeholder` (same wamid), sent on its own.
        who, direction = _customer_of(message, number, business)
        record = _record(message, who, direction, HISTORY)
        result.media_arrivals.append(MediaArrival(record))


def _state_sync(entry: models.Entry, value: models.StateSyncValue, result: Interpretation) -> None:
    number = value.metadata.phone_number_id
    result.see_number(NumberSeen(number, value.metadata.display_phone_number, entry.id, coexistence_evidence=True))
    for item in value.state_sync:
        if item.type != "contact" or item.contact is None or item.action not in ("add", "remove"):
            result.unhandled.append(Unhandled("smb_app_state_sync", f"state sync {item.type}/{item.action}", item.model_dump(mode="json")))
            continue
        who = Identifiers.of(number, item.contact.phone_number, item.contact.user_id)
        if who.empty:
            result.unhandled.append(Unhandled("smb_app_state_sync", "contact without a phone number", item.model_dump(mode="json")))
            continue
        result.app_contacts.append(
            AppContactChange(
                number,
                who.wa_id,
                item.action,
                item.contact.full_name,
                item.contact.first_name,
                item.metadata.timestamp if item.metadata else (entry.time or 0),
                who=who,
            )
        )


def _account_update(entry: models.Entry, value: models.AccountUpdateValue, result: Interpretation) -> None:
    waba_id = (value.waba_info.waba_id if value.waba_info and value.waba_info.waba_id else None) or entry.id
    result.account_events.append(
        AccountEvent(
            waba_id=waba_id,
            event=value.event,
            time=entry.time,
            phone_number=value.phone_number,
            disconnection=value.disconnection_info.model_dump(mode="json", exclude_none=True) if value.disconnection_info else None,
            raw=value.model_dump(mode="json"),
        )
    )


def _quality_update(entry: models.Entry, value: models.PhoneNumberQualityUpdateValue, result: Interpretation) -> None:
    limit = limit_of(value.max_daily_conversations_per_business)
    if limit is None:
        limit = limit_of(value.current_limit)
    quality = value.event if value.event in QUALITY_EVENTS else None
    if limit is not None or quality is not None:
        result.messaging_limits.append(MessagingLimitUpdate(entry.id, entry.time or 0, limit, quality))


def _capability_update(entry: models.Entry, value: models.BusinessCapabilityUpdateValue, result: Interpretation) -> None:
    limit = limit_of(value.max_daily_conversations_per_business)
    if limit is None:
        limit = limit_of(value.max_daily_conversation_per_phone)
    if limit is not None:
        result.messaging_limits.append(MessagingLimitUpdate(entry.id, entry.time or 0, limit, None))


# The quality events of phone_number_quality_update (the others say only that the limit moved).
QUALITY_EVENTS = frozenset({"FLAGGED", "UNFLAGGED"})

_HANDLERS = {
    "messages": _messages,
    "smb_message_echoes": _echoes,
    "history": _history,
    "smb_app_state_sync": _state_sync,
    "account_update": _account_update,
    "phone_number_quality_update": _quality_update,
    "business_capability_update": _capability_update,
}
