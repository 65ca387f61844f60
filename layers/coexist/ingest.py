"""Ingest: one queued webhook in, the inbox tables updated — idempotently.

Called once per SQS record by the ingest function. Any storage error propagates so that only this
record fails and SQS redelivers it; everything written before the error is written again, with
the same effect, on the retry (ARCHITECTURE rule 5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pydantic import ValidationError

from coexist.domain import coexistence
from coexist.domain.interpret import interpret
from coexist.domain.records import Interpretation
from coexist.intake import ARCHIVED, BODY_ATTRIBUTE, INLINE, why_not_an_envelope
from coexist.meta.models import WebhookEnvelope
from coexist.store.archive import Archive
from coexist.store.chats import ChatStore
from coexist.store.contacts import ContactStore
from coexist.store.messages import MessageStore
from coexist.store.numbers import AccountStore, NumberStore


class Quarantined(Exception):
    """The record holds no WhatsApp webhook; it was kept in quarantine and must not be retried."""


@dataclass
class Inbox:
    messages: MessageStore
    chats: ChatStore
    contacts: ContactStore
    numbers: NumberStore
    accounts: AccountStore
    archive: Archive


@dataclass
class IngestSummary:
    new_customer_messages: list[str] = field(default_factory=list)
    messages: int = 0
    duplicates: int = 0
    history_messages: int = 0
    statuses: int = 0
    unhandled: int = 0
    unknown_message_types: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)


def envelope_from_record(body: str, attributes: dict[str, str], archive: Archive) -> dict:
    """The Meta envelope carried by an inbound-queue record, wherever it came from.

    - our webhook: the body inline, or a pointer to the archived body for big ones;
    - AWS End User Messaging Social through SNS: `whatsAppWebhookEntry` holds one entry as a JSON
      string (with or without SNS raw message delivery). Those are archived here, as received.
    """
    kind = attributes.get(BODY_ATTRIBUTE)
    if kind == ARCHIVED:
        raw = archive.read(json.loads(body)["archive_key"])
    elif kind == INLINE:
        raw = body.encode("utf-8")
    else:
        return _from_social_messaging(body, archive)
    problem = why_not_an_envelope(raw)
    if problem:
        archive.quarantine(raw, problem)
        raise Quarantined(problem)
    return json.loads(raw)


def _from_social_messaging(body: str, archive: Archive) -> dict:
    raw = body.encode("utf-8")
    try:
        document = json.loads(body)
        if isinstance(document, dict) and document.get("Type") == "Notification" and "Message" in document:
            document = json.loads(document["Message"])  # SNS without raw message delivery
        entry = json.loads(document["whatsAppWebhookEntry"])
        if not isinstance(entry, dict):
            raise ValueError("whatsAppWebhookEntry is not an object")
    except (ValueError, KeyError, TypeError) as error:
        reason = f"not a WhatsApp webhook nor an End User Messaging Social event ({type(error).__name__})"
        archive.quarantine(raw, reason)
        raise Quarantined(reason) from error
    archive.keep_raw(raw)
    return {"object": "whatsapp_business_account", "entry": [entry]}


def ingest(document: dict, inbox: Inbox) -> IngestSummary:
    try:
        envelope = WebhookEnvelope.model_validate(document)
    except ValidationError as error:
        reason = f"envelope failed validation: {error.error_count()} error(s)"
        inbox.archive.quarantine(json.dumps(document).encode(), reason)
        raise Quarantined(reason) from error
    return apply(interpret(envelope), inbox)


def apply(found: Interpretation, inbox: Inbox) -> IngestSummary:
    summary = IngestSummary(unknown_message_types=list(found.unknown_message_types))
    for seen in found.numbers.values():
        inbox.numbers.record_seen(seen)
    for profile in found.profiles.values():
        inbox.contacts.record_profile(profile)
    for change in found.app_contacts:
        inbox.contacts.record_app_contact(change)
    for message in found.messages:
        if inbox.messages.record(message):
            summary.messages += 1
            if message.source == "customer":
                summary.new_customer_messages.append(message.id)
        else:
            summary.duplicates += 1
    if found.history_messages:
        summary.history_messages = inbox.messages.import_history(found.history_messages)
    for arrival in found.media_arrivals:
        inbox.messages.apply_media(arrival.message)
    for edit in found.edits:
        inbox.messages.apply_edit(edit)
    for revoke in found.revokes:
        inbox.messages.apply_revoke(revoke)
    for status in found.statuses:
        inbox.messages.apply_status(status)
        summary.statuses += 1
    for activity in found.chats.values():
        inbox.chats.record_activity(activity)
    for chunk in found.history_chunks:
        inbox.numbers.record_history_chunk(chunk)
    for declined in found.history_declined:
        inbox.numbers.record_history_declined(declined)
    for event in found.account_events:
        inbox.accounts.record_event(event)
        state = coexistence.state_after(event.event)
        if state is None:
            continue
        inbox.accounts.record_state(event, state)
        if event.phone_number:
            number = inbox.numbers.find_by_display_number(event.waba_id, event.phone_number)
            if number:
                inbox.numbers.record_state(number, event, state)
    for unhandled in found.unhandled:
        inbox.archive.keep_unhandled(unhandled.field, unhandled.raw, unhandled.reason)
        summary.unhandled += 1
    return summary
