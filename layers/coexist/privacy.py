"""A customer's rights over what the business holds about them: an export of all of it, erasure,
and the legal hold that suspends erasure and retention while a matter is open.

- Export: one JSON document (the chat, every message, the contact with its consent evidence, the
  audit trail of access to the chat, and the media ids Meta holds), built asynchronously.
- Erasure: the customer's messages, contact, chat and identity rows leave the tables; the erasure is
  first written to the erasure list so a restore from backup can apply it again. The webhook
  archive is under Object Lock: those bodies stay until their retention ends (`archive_retained_until`).
  The audit trail stays: it is the record that the customer's data was accessed and erased.
- What a step already running wrote under the chat after the erasure passed (the bot's reply a
  turn was sending, its statuses, a message ingest was storing) is never served (the reader answers
  404 for an erased chat) and is removed by the retention function's daily replay of the erasures
  of the last two days (`ErasureReplay`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

from coexist.domain.audit import iso_ms
from coexist.inbox import Inbox
from coexist.reads import InboxReader, NotFound
from coexist.store.audit import AuditLog, AuditQuery
from coexist.store.consent import change_from_item
from coexist.store.chats import ChatRepository
from coexist.store.contacts import ContactStore
from coexist.store.messages import MessageStore, erase_chat_messages
from coexist.store.privacy import PrivacyStore

MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")
# How far back the daily replay looks: a step in flight ends within minutes (a function's timeout),
# and two days give every erasure two daily runs, so one failed run loses nothing.
REPLAYED_FOR = timedelta(days=2)
EXPORT_FORMAT = "coexist.customer-export/1"


class LegalHold(Exception):
    """The chat is under a legal hold: nothing of it may be erased (HTTP 409 `legal_hold`)."""

    def __init__(self, hold: dict):
        super().__init__(f"chat {hold.get('chat_id')} is under a legal hold set by {hold.get('set_by')} at {hold.get('set_at')}")
        self.hold = hold


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CustomerRights:
    def __init__(self, inbox: Inbox, store: PrivacyStore, audit: AuditLog, archive_retention_days: int, clock=_now,
                 campaigns=None, retention=None, stop_conversation=None):
        self.inbox = inbox
        self.campaigns = campaigns  # CampaignStore: the lists and links that name the customer
        self.store = store
        self.audit = audit
        self.archive_retention_days = archive_retention_days
        self.clock = clock
        self.retention = retention  # coexist.retention.RetentionSweeper: a hold takes back any expiry given
        self.stop_conversation = stop_conversation  # (conversation id) -> None: a live conversation is stopped

    # --- legal hold ----------------------------------------------------------------------------
    def set_hold(self, chat_id: str, by: str, reason: str | None) -> dict:
        self._existing(chat_id)
        hold = self.store.set_hold(chat_id, by, iso_ms(self.clock()), reason)
        if self.retention is not None:
            self.retention.withdraw(chat_id)  # after the hold is written: a sweep from now on sees it
        return hold

    def clear_hold(self, chat_id: str) -> None:
        if not self.store.clear_hold(chat_id):
            raise NotFound(f"chat {chat_id} has no legal hold")
        if self.retention is not None:
            self.retention.restore(chat_id)  # a closed chat's retention runs again

    # --- erasure -------------------------------------------------------------------------------
    def erase(self, chat_id: str, by: str) -> dict:
        hold = self.store.hold(chat_id)
        if hold is not None:
            raise LegalHold(hold)
        chat = self._existing(chat_id)
        now = self.clock()
        customers = [chat_id, *sorted(chat.merged_from)]  # people found to be this one were folded in
        entry = self.store.record_erasure(chat_id, chat.phone_number_id, by, iso_ms(now), chat_ids=customers)
        chats = [c for c in (self.inbox.chats.get(customer) for customer in customers) if c is not None]
        self._stop_conversations(chats)
        numbers = {c.wa_id for c in chats if c.wa_id}
        messages = sum(erase_chat_messages(self.inbox.messages, c) for c in customers)
        campaign_entries = self.campaigns.erase_customer(customers, numbers) if self.campaigns is not None else 0
        identity_rows = 0
        for customer_id in customers:
            self.inbox.contacts.erase(chat.phone_number_id, customer_id)
            identity_rows += self.inbox.customers.erase(chat.phone_number_id, customer_id)
            self.inbox.chats.erase(customer_id)
        # Once more, for what a step in flight stored while the rest went (usually nothing: one query).
        messages += sum(erase_chat_messages(self.inbox.messages, c) for c in customers)
        # Every webhook body archived up to now is released by then at the latest (Object Lock).
        retained_until = now + timedelta(days=self.archive_retention_days)
        return {
            "chat_id": chat_id,
            "erased_at": entry["erased_at"],
            "erased": {"messages": messages, "chats": len(customers), "contacts": len(customers), "identity_rows": identity_rows,
                       "campaign_list_entries": campaign_entries},
            "archive_retained_until": iso_ms(retained_until),
            "archive": "The raw webhook bodies that mention this customer are kept under S3 Object Lock and cannot "
                       "be erased before archive_retained_until; they then expire by the archive's lifecycle.",
            "audit_trail": "kept: entries hold ids only and record this erasure",
        }

    def _stop_conversations(self, chats) -> None:
        """A conversation still running on the chat is stopped before its data goes, so no step
        wakes later to a chat that is gone (the chats' store refuses what one still writes)."""
        for chat in chats:
            if self.stop_conversation is not None and chat.live and chat.conversation_id:
                self.stop_conversation(chat.conversation_id)

    # --- export --------------------------------------------------------------------------------
    def request_export(self, chat_id: str, by: str) -> dict:
        self._existing(chat_id)
        return self.store.new_export(chat_id, by, iso_ms(self.clock()))

    def export_document(self, chat_id: str) -> bytes:
        """Everything held about the customer of this chat, as one JSON document."""
        chat = self._existing(chat_id)
        reader = InboxReader(self.inbox)
        messages, cursor = [], None
        while True:
            page = reader.messages(chat_id, "200", cursor)
            messages += page["items"]
            cursor = page["next"]
            if not cursor:
                break
        audit, cursor = [], None
        while True:
            page = self.audit.page(AuditQuery(chat_id=chat_id), 200, cursor)
            audit += page["items"]
            cursor = page["next"]
            if not cursor:
                break
        contact = self.inbox.contacts.get(chat.phone_number_id, chat_id)
        contact = {k: v for k, v in _plain(contact or {}).items()}
        document = {
            "format": EXPORT_FORMAT,
            "generated_at": iso_ms(self.clock()),
            "chat": reader.chat(chat_id),
            "contact": contact or None,
            "consent": self._consent(chat.phone_number_id, chat_id),
            "messages": messages,
            "media": [_media_of(m) for m in messages if m.get("type") in MEDIA_TYPES],
            "legal_hold": self.store.hold(chat_id),
            "audit": audit,
        }
        return json.dumps(document, sort_keys=True, indent=1, default=str).encode()

    def _consent(self, phone_number_id: str, customer_id: str) -> dict:
        """The consent ledger: each purpose's current state and every change with its evidence."""
        ledger = self.inbox.contacts.consent
        current = {purpose: {"state": c.state.value, "at": c.at, "change_id": c.change_id}
                   for purpose, c in ledger.current(phone_number_id, customer_id).items()}
        history, start = [], None
        while True:
            items, start = ledger.history(phone_number_id, customer_id, 200, start)
            history += [change_from_item(item) for item in items]
            if not start:
                return {"current": current, "history": history}

    def _existing(self, chat_id: str):
        chat = self.inbox.chats.get(chat_id)
        if chat is None:
            raise NotFound(f"chat {chat_id} not found")
        return chat


def _plain(item: dict) -> dict:
    from coexist.store.items import from_item_value

    return from_item_value(item)


def _media_of(message: dict) -> dict:
    """Coexist keeps no media bytes: Meta's media id (downloadable through the Graph API while Meta
    keeps it) or the link the message carried."""
    content = message.get("content") or {}
    media = content.get(message["type"]) if isinstance(content.get(message["type"]), dict) else content
    return {"message_id": message["id"], "type": message["type"], "media_id": media.get("id"), "link": media.get("link"),
            "mime_type": media.get("mime_type")}


class ErasureReplay:
    """The erasures of the last two days, applied again to what came back since.

    An erasure stops the chat's conversation and removes everything listed at that moment, but a
    step already running may still store something under the chat id a moment later: the bot's
    reply a turn was sending (and the statuses Meta returns for it), or a message ingest was
    storing as the erasure ran. The reader never serves an erased chat; this removes what such a
    step left (messages, a chat item, a contact), run by the retention function once a day."""

    def __init__(self, store: PrivacyStore, messages: MessageStore, chats: ChatRepository, contacts: ContactStore,
                 clock=time.time):
        self.store = store
        self.messages = messages
        self.chats = chats
        self.contacts = contacts
        self.clock = clock

    def run(self) -> dict:
        since = datetime.fromtimestamp(self.clock(), timezone.utc) - REPLAYED_FOR
        removed: Counter = Counter()
        entries = self.store.erasures(since=iso_ms(since))
        for entry in entries:
            for chat_id in entry.get("chat_ids") or [entry["chat_id"]]:
                removed["messages"] += erase_chat_messages(self.messages, chat_id)
                removed["chats"] += self.chats.erase(chat_id)
                if entry.get("phone_number_id"):  # the contact (and any consent) a late message wrote
                    self.contacts.erase(entry["phone_number_id"], chat_id)
        return {"erasures_replayed": len(entries), **{f"{kind}_removed_again": n for kind, n in removed.items()}}
