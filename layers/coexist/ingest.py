"""Ingest: one queued webhook in, the inbox tables updated — idempotently.

Called once per SQS record by the ingest function. Any storage error propagates so that only this
record fails and SQS redelivers it; everything written before the error is written again, with
the same effect, on the retry (docs/ARCHITECTURE.md rule 5).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from pydantic import ValidationError

from coexist.costs import cost_by_category
from coexist.customers import apply_identity_changes, assign_chats
from coexist.domain import coexistence, reminder
from coexist.domain.interpret import interpret, reply_id
from coexist.domain.records import AccountEvent, Interpretation, Source
from coexist.events import from_webhook
from coexist.intake import ARCHIVED, BODY_ATTRIBUTE, INLINE, parsed_envelope
from coexist.meta.models import WebhookEnvelope
from coexist.inbox import Inbox
from coexist.store.archive import Archive
from coexist.store.campaigns import within_reply_window


class Quarantined(Exception):
    """The record holds no WhatsApp webhook; it was kept in quarantine and must not be retried."""


@dataclass
class IngestSummary:
    messages: int = 0
    duplicates: int = 0
    history_messages: int = 0
    statuses: int = 0
    unhandled: int = 0
    disconnections: int = 0  # account events that took a number out of Coexistence (operators are paged)
    unknown_message_types: list[str] = field(default_factory=list)
    cost_by_category: dict = field(default_factory=dict)  # what Meta charges for what this webhook delivered


def envelope_from_record(body: str, attributes: dict[str, str], archive: Archive) -> dict:
    """The Meta envelope carried by an inbound-queue record, wherever it came from.

    - our webhook: the body inline, or a pointer to the archived body for big ones;
    - AWS End User Messaging Social through SNS: `whatsAppWebhookEntry` holds one entry as a JSON
      string (with or without SNS raw message delivery). Those are archived here, as received,
      through the raw archive's queue as the webhook's are.
    """
    kind = attributes.get(BODY_ATTRIBUTE)
    if kind == ARCHIVED:
        raw = archive.read(json.loads(body)["archive_key"])
    elif kind == INLINE:
        raw = body.encode("utf-8")
    else:
        return _from_social_messaging(body, archive)
    document, problem = parsed_envelope(raw)
    if problem:
        archive.quarantine(raw, problem)
        raise Quarantined(problem)
    return document


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
    archive.keep_raw_in_a_batch(raw)
    return {"object": "whatsapp_business_account", "entry": [entry]}


# Customer messages that are not someone talking to the business (reactions, system notices).
NOT_CONVERSATION = frozenset({"reaction", "system"})


def ingest(document: dict, inbox: Inbox, signals=None, events=None, reminders=None) -> IngestSummary:
    try:
        envelope = WebhookEnvelope.model_validate(document)
    except ValidationError as error:
        reason = f"envelope failed validation: {error.error_count()} error(s)"
        inbox.archive.quarantine(json.dumps(document).encode(), reason)
        raise Quarantined(reason) from error
    return apply(interpret(envelope), inbox, signals, events, reminders)


# Independent writes of one webhook run in parallel: every write is conditional or idempotent and
# commutes with the others (a status before its message, an edit before its original, …), so the
# order inside a phase does not matter. Phases stay in a natural order for readability.
WRITERS = 8
_pool: ThreadPoolExecutor | None = None


def _in_parallel(operation, items) -> list:
    items = list(items)
    if len(items) <= 1:
        return [operation(item) for item in items]
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="ingest-writer")
    futures = [_pool.submit(operation, item) for item in items]
    wait(futures)
    for future in futures:
        if future.exception() is not None:
            raise future.exception()
    return [future.result() for future in futures]


def apply(found: Interpretation, inbox: Inbox, signals=None, events=None, reminders=None) -> IngestSummary:
    """Write what the webhook says; then tell the workflow (`signals`) and the event bus (`events`).
    A customer's tap on a reminder's button is recorded on the reminder (`reminders`) first."""
    summary = IngestSummary(unknown_message_types=list(found.unknown_message_types))
    apply_identity_changes(found, inbox)  # a new number or BSUID first: the records name the new one
    # Every record's chat id, its customer's opaque id; a merge's superseded conversation is ended.
    customers = assign_chats(found, inbox, signals.end_superseded if signals is not None else None)
    new_echo_chats: set[str] = set()
    new_echoes = []
    new_customer_messages = []
    new_campaign_replies = []
    new_inbound: list[str] = []  # one number per new customer message
    _in_parallel(inbox.numbers.record_seen, found.numbers.values())
    _in_parallel(inbox.contacts.record_profile, [p for p in found.profiles.values() if p.chat_id])
    _in_parallel(inbox.contacts.record_app_contact, [c for c in found.app_contacts if c.chat_id])
    for message, is_new in zip(found.messages, _in_parallel(inbox.messages.record, found.messages)):
        if not is_new:
            summary.duplicates += 1
            # Recorded by an earlier attempt that failed before the workflow heard of it: tell it now.
            if signals is not None and message.source == Source.CUSTOMER and not inbox.messages.was_signalled(message.id):
                new_customer_messages.append(message)
            continue
        summary.messages += 1
        if message.source == Source.CUSTOMER:
            new_inbound.append(message.phone_number_id)
            new_customer_messages.append(message)
            if message.type not in NOT_CONVERSATION:
                new_campaign_replies.append(message)
        elif message.source == Source.BUSINESS_APP:
            new_echo_chats.add(message.chat_id)
            new_echoes.append(message)
    if inbox.throughput is not None and new_inbound:
        # Meta counts incoming messages against the number's throughput too: the sends after these
        # take later slots. A redelivered message is not counted again.
        inbox.throughput.count(new_inbound)
    if found.history_messages:
        summary.history_messages = inbox.messages.import_history(found.history_messages)
    _in_parallel(lambda arrival: inbox.messages.apply_media(arrival.message), found.media_arrivals)
    _in_parallel(inbox.messages.apply_edit, found.edits)
    _in_parallel(inbox.messages.apply_revoke, found.revokes)
    landed = _in_parallel(inbox.messages.apply_status, found.statuses)  # the messages they moved, as written
    summary.statuses = len(found.statuses)
    activities = list(found.chats.values())
    # The chats a campaign wrote to (their window's update says so): only their customers' messages
    # are looked up as replies to a campaign.
    campaign_wrote = {a.chat_id: wrote for a, wrote in zip(activities, _in_parallel(inbox.chats.record_activity, activities))}
    if reminders is not None:
        for message in found.messages:  # duplicates too: an answer is recorded once per reply anyway
            named = reminder.answer_of(reply_id(message.type, message.content)) if message.source == Source.CUSTOMER else None
            if named:
                reminders.answered(named[0], named[1], message.id, message.chat_id, message.timestamp)
    # Who the customer is, copied onto its chat (forward only); a customer only a status named gets no
    # chat from it.
    active = {activity.chat_id for activity in found.chats.values()}
    _in_parallel(lambda c: inbox.chats.record_identity(c.customer_id, c, existing_only=c.customer_id not in active),
                 customers.values())
    if inbox.costs is not None:
        # The cost ledger: statuses priced by Meta (or by our rules), the phone's replies priced as if
        # the API had sent them. A retry writes the same entries.
        entries = _in_parallel(lambda pair: inbox.costs.on_status(*pair), zip(found.statuses, landed))
        entries += _in_parallel(inbox.costs.on_app_reply, new_echoes)
        summary.cost_by_category = cost_by_category(entries)
    if signals is not None:
        # The conversation workflow hears of what is new only: duplicates never wake it twice.
        for chat in sorted(new_echo_chats):
            signals.business_app_replied(chat)
        for message in sorted(new_customer_messages, key=lambda m: (m.timestamp, m.id)):
            if message.type not in NOT_CONVERSATION:
                signals.customer_wrote(message.chat_id, message.id, reply_id(message.type, message.content), message)
            inbox.messages.mark_signalled(message.id)
    for chunk in found.history_chunks:
        inbox.numbers.record_history_chunk(chunk)
    for declined in found.history_declined:
        inbox.numbers.record_history_declined(declined)
    for event in found.account_events:
        if _apply_account_event(event, inbox) == coexistence.DISCONNECTED:
            summary.disconnections += 1
    if inbox.campaigns is not None:
        for limit in found.messaging_limits:
            inbox.campaigns.record_messaging_limit(limit.portfolio, limit.time, "meta_webhook", limit.limit, limit.quality)
        # A customer's new message shortly after a campaign wrote to them is its reply (counted once).
        for message in (m for m in new_campaign_replies if may_answer_a_campaign(campaign_wrote.get(m.chat_id), m.timestamp)):
            link = inbox.campaigns.campaign_of_reply(message.chat_id, message.timestamp)
            if link is not None:
                inbox.messages.mark_campaign(message.id, link["campaign_id"])
                inbox.campaigns.count_reply(message.chat_id, link["campaign_id"])
    for unhandled in found.unhandled:
        inbox.archive.keep_unhandled(unhandled.field, unhandled.raw, unhandled.reason)
        summary.unhandled += 1
    if events is not None:
        # After every write: an event never announces what was not stored. A redelivered webhook
        # publishes its events again (an earlier attempt may have failed before it could), with the
        # same ids: consumers dedupe.
        events.publish([e for message in found.messages for e in from_webhook.received(message)]
                       + [e for update in found.statuses for e in from_webhook.status_changed(update)])
    return summary


def may_answer_a_campaign(campaign_wrote_at: int | None, at: int) -> bool:
    """A customer's message at `at` may be a reply to a campaign that wrote to them at that time
    (store.campaigns.CampaignStore.campaign_of_reply decides)."""
    return campaign_wrote_at is not None and within_reply_window(campaign_wrote_at, at)


def _apply_account_event(event: AccountEvent, inbox: Inbox) -> str | None:
    """Record the event; the state it moves the account (and its number) to, if any."""
    inbox.accounts.record_event(event)
    state = coexistence.state_after(event.event)
    if state is None:
        return None
    inbox.accounts.record_state(event, state)
    if event.phone_number:
        number = inbox.numbers.find_by_display_number(event.waba_id, event.phone_number)
        if number:
            inbox.numbers.record_state(number, event, state)
    return state
