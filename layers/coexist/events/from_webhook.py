"""What ingest stored from one webhook, as domain events: customer messages, leads, statuses."""

from __future__ import annotations

from coexist.domain.interpret import reply_id
from coexist.domain.records import MessageRecord, Source, StatusUpdate
from coexist.events.models import STATUS_EVENTS, DomainEvent, LeadCaptured, MessageReceived, iso


def received(message: MessageRecord) -> list[DomainEvent]:
    """A new customer message; a lead too when it came from a click-to-WhatsApp ad."""
    if message.source != Source.CUSTOMER:
        return []
    common = {"phone_number_id": message.phone_number_id, "chat_id": message.chat_id, "message_id": message.id,
              "occurred_at": iso(message.timestamp)}
    found: list[DomainEvent] = [MessageReceived(
        **common, message_type=message.type, reply_id=reply_id(message.type, message.content),
        context_message_id=message.context_id, text=message.text,
    )]
    referral = message.referral or {}
    if referral:
        found.append(LeadCaptured(
            **common, ad_id=referral.get("source_id"), source_type=referral.get("source_type"),
            source_url=referral.get("source_url"), headline=referral.get("headline"),
            ctwa_clid=referral.get("ctwa_clid"), media_type=referral.get("media_type"),
        ))
    return found


def status_changed(update: StatusUpdate) -> list[DomainEvent]:
    model = STATUS_EVENTS.get(update.status)
    if model is None:  # e.g. `played`: not a CRM fact
        return []
    fields = {
        "phone_number_id": update.phone_number_id, "chat_id": update.chat_id or None, "message_id": update.message_id,
        "coexist_message_id": update.callback_data, "occurred_at": iso(update.timestamp),
        "pricing_category": (update.pricing or {}).get("category"),
    }
    if update.status == "failed":
        fields["error_codes"] = [int(e["code"]) for e in update.errors if str(e.get("code", "")).isdigit()]
    return [model(**fields)]
