"""The inbox as the agent API shows it: chats, messages and numbers as JSON-ready dicts.

Every read is a key lookup or an index query (ARCHITECTURE: never a Scan on a request path).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime, timezone

from coexist.domain import window
from coexist.domain.records import split_chat_id
from coexist.inbox import Inbox
from coexist.store.chats import CLOSED
from coexist.store.contacts import display_name
from coexist.store.items import from_item_value
from coexist.store.numbers import coexistence_state_of
from coexist.store.queries import index_page

DEFAULT_PAGE = 50
MAX_PAGE = 200


class NotFound(Exception):
    pass


class BadRequest(Exception):
    pass


def iso(seconds) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE
    try:
        size = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be a whole number between 1 and {MAX_PAGE}") from None
    if not 1 <= size <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number between 1 and {MAX_PAGE}")
    return size


def encode_cursor(last_key: dict | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(from_item_value(last_key), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, expected_keys: set[str], fixed: dict[str, str]) -> dict | None:
    """The `next` value of the previous page; rejected if it was not made for this listing."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not valid; pass the `next` value of the previous page") from None
    if not isinstance(key, dict) or set(key) != expected_keys or any(key.get(k) != v for k, v in fixed.items()):
        raise BadRequest("cursor does not belong to this listing; pass the `next` value of the previous page")
    return key


class InboxReader:
    def __init__(self, inbox: Inbox, clock=time.time):
        self.inbox = inbox
        self.clock = clock

    def chats(self, phone_number_id: str | None, limit: str | None, cursor: str | None) -> dict:
        if not phone_number_id:
            raise BadRequest("phone_number_id (or assignee) is required")
        size = page_size(limit)
        start = decode_cursor(cursor, {"phone_number_id", "wa_id", "last_message_at"}, {"phone_number_id": phone_number_id})
        items, last = self.inbox.chats.list_recent(phone_number_id, size, start)
        contacts = self.inbox.contacts.get_many(phone_number_id, [i["wa_id"] for i in items])
        return {"items": [self._chat(i, contacts.get(i["wa_id"])) for i in items], "next": encode_cursor(last)}

    def chats_of_agent(self, assignee: str, limit: str | None, cursor: str | None) -> dict:
        size = page_size(limit)
        start = decode_cursor(cursor, {"phone_number_id", "wa_id", "assignee", "last_message_at"}, {"assignee": assignee})
        items, last = index_page(self.inbox.chats.table, "by_assignee", "assignee", assignee, size, start, newest_first=True)
        views = []
        for item in items:
            contact = self.inbox.contacts.get_many(item["phone_number_id"], [item["wa_id"]]).get(item["wa_id"])
            views.append(self._chat(item, contact))
        return {"items": views, "next": encode_cursor(last)}

    def chat(self, chat_id: str) -> dict:
        number, wa_id = self._split(chat_id)
        item = self.inbox.chats.get(number, wa_id)
        if item is None:
            raise NotFound(f"chat {chat_id} not found")
        contact = self.inbox.contacts.get_many(number, [wa_id]).get(wa_id)
        return self._chat(item, contact)

    def messages(self, chat_id: str, limit: str | None, cursor: str | None) -> dict:
        number, wa_id = self._split(chat_id)
        size = page_size(limit)
        start = decode_cursor(cursor, {"id", "chat_id", "position"}, {"chat_id": chat_id})
        items, last = self.inbox.messages.list_for_chat(chat_id, size, start)
        # Messages can exist before their chat does (a status for a message sent elsewhere).
        if not items and start is None and self.inbox.chats.get(number, wa_id) is None:
            raise NotFound(f"chat {chat_id} not found")
        return {"items": [message_view(i) for i in items], "next": encode_cursor(last)}

    def number(self, phone_number_id: str) -> dict:
        item = self.inbox.numbers.get(phone_number_id)
        if item is None:
            raise NotFound(f"phone number {phone_number_id} not found")
        item = from_item_value(item)
        account = from_item_value(self.inbox.accounts.state(item["waba_id"])) if item.get("waba_id") else None
        state = coexistence_state_of(item, account)
        return {
            "phone_number_id": item["phone_number_id"],
            "display_phone_number": item.get("display_phone_number"),
            "waba_id": item.get("waba_id"),
            "coexistence_state": state["state"],
            "coexistence_event": state.get("event"),
            "coexistence_reason": state.get("reason"),
            "coexistence_changed_at": iso(state.get("event_time")) if state.get("event_time") else None,
            "history_sync": {
                "phase": item.get("history_phase"),
                "progress": item.get("history_progress", 0),
                "chunks": item.get("history_chunks", []),
                "declined": bool(item.get("history_declined", False)),
                "complete": item.get("history_progress", 0) >= 100,
            },
            "last_app_activity_at": iso(item.get("last_app_activity_at")),
        }

    @staticmethod
    def _split(chat_id: str) -> tuple[str, str]:
        parts = split_chat_id(chat_id)
        if parts is None:
            raise NotFound(f"chat {chat_id} not found")
        return parts

    def _chat(self, item: dict, contact: dict | None) -> dict:
        item = from_item_value(item)
        last_customer = item.get("last_customer_message_at")
        return {
            "chat_id": item["chat_id"],
            "phone_number_id": item["phone_number_id"],
            "wa_id": item["wa_id"],
            "contact_name": display_name(contact),
            "mode": item.get("mode", CLOSED),
            "assignee": item.get("assignee"),
            "window_expires_at": iso(window.window_expires_at(last_customer)),
            "window_open": window.is_open(last_customer, int(self.clock())),
            "last_message_at": iso(item.get("last_message_at")),
            "last_customer_message_at": iso(last_customer),
            "last_app_activity_at": iso(item.get("last_app_activity_at")),
            "referral_at": iso(item.get("referral_at")),
            # The conversation workflow, step by step.
            "conversation_state": item.get("conversation_state"),
            "waiting_for": item.get("waiting_for"),
            "offered_to": item.get("offered_to"),
            "bot_intent": item.get("bot_intent"),
            "takeover_by": item.get("takeover_by"),
            "takeover_at": iso(item.get("takeover_at")),
            "queued_at": iso(item.get("queued_at")),
            "assigned_at": iso(item.get("assigned_at")),
            "first_human_reply_at": iso(item.get("first_human_reply_at")),
            "closed_at": iso(item.get("closed_at")),
            "window_warning_at": iso(item.get("window_warning_at")),
            "satisfaction_score": item.get("satisfaction_score"),
        }


def message_view(item: dict) -> dict:
    item = from_item_value(item)
    revoked = item.get("revoked_at") is not None
    return {
        "id": item["id"],
        "wamid": item.get("wamid") or (item["id"] if item["id"].startswith("wamid.") else None),
        "chat_id": item.get("chat_id"),
        "direction": item.get("direction"),
        "source": item.get("source"),
        "sent_by": item.get("sent_by"),  # the agent who sent it from the console, if one did
        "type": item.get("type"),
        # The business deleted it for everyone: the inbox no longer shows it (the archive keeps it).
        "text": None if revoked else item.get("text"),
        "content": None if revoked else item.get("content"),
        "timestamp": iso(item.get("timestamp")),
        "status": item.get("status"),
        # Why it failed, in our words (`window_closed`, `retries_exhausted: meta_unavailable`, …);
        # Meta's own code and text, when Meta gave one, are in `errors`.
        "failure_reason": item.get("failure_reason"),
        "errors": item.get("errors", []) + item.get("inbound_errors", []),
        "pricing": item.get("pricing"),
        "context_id": item.get("context_id"),
        "history": bool(item.get("is_history", False)),
        "history_status": item.get("history_status"),
        "edited_at": iso(item.get("edited_at")),
        "revoked_at": iso(item.get("revoked_at")),
        "referral": item.get("referral"),
    }
