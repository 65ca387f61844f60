"""The inbox as the agent API shows it: chats, messages and numbers as JSON-ready dicts.

Every read is a key lookup or an index query (docs/ARCHITECTURE.md rule 10).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import datetime, timezone

from coexist.domain import window
from coexist.domain.identity import Kind, is_customer_id, kind_of, normalize_phone
from coexist.inbox import Inbox
from coexist.domain.chat import Chat
from coexist.store.contacts import display_name
from coexist.store.items import from_item_value
from coexist.store.numbers import coexistence_state_of, quiet_of

DEFAULT_PAGE = 50
MAX_PAGE = 200


class NotFound(Exception):
    pass


class BadRequest(Exception):
    pass


MAX_ID = 128  # chat, number, account and agent ids; Idempotency-Key; the API's request strings by default


def checked_text(value, name: str, max_length: int = MAX_ID, required: bool = True) -> str | None:
    """A request string within its documented limit, or a 400 saying which."""
    if value is None or value == "":
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not isinstance(value, str) or len(value) > max_length or any(ord(c) < 32 for c in value):
        raise BadRequest(f"{name} must be a string of at most {max_length} printable characters")
    return value


def query_parameter(resolver, name: str, max_length: int = MAX_ID) -> str | None:
    """One query string parameter of the request `resolver` (the API or one of its routers) is
    answering, checked as `checked_text`; absent or empty is None."""
    return checked_text((resolver.current_event.query_string_parameters or {}).get(name), name, max_length, required=False)


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


# The key of each listing's index, as its cursor carries it (numbers are DynamoDB N attributes).
CHATS_PAGE = {"phone_number_id": str, "chat_id": str, "last_message_at": int}
ASSIGNED_PAGE = {"chat_id": str, "assignee": str, "last_message_at": int}
MESSAGES_PAGE = {"id": str, "chat_id": str, "position": str}


def decode_cursor(cursor: str | None, expected: dict[str, type], fixed: dict[str, str]) -> dict | None:
    """The `next` value of the previous page; rejected if it was not made for this listing."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not valid; pass the `next` value of the previous page") from None
    if (
        not isinstance(key, dict)
        or set(key) != set(expected)
        # A wrongly typed value would reach DynamoDB as a malformed start key (bool is no number here).
        or any(not isinstance(key[k], t) or isinstance(key[k], bool) for k, t in expected.items())
        or any(key.get(k) != v for k, v in fixed.items())
    ):
        raise BadRequest("cursor does not belong to this listing; pass the `next` value of the previous page")
    return key


class InboxReader:
    def __init__(self, inbox: Inbox, clock=time.time, erased=None):
        self.inbox = inbox
        self.clock = clock
        # (chat id) -> bool: was the chat erased? (PrivacyStore.erased) None: nothing is looked up.
        self.erased = erased

    def chats(self, phone_number_id: str | None, limit: str | None, cursor: str | None) -> dict:
        if not phone_number_id:
            raise BadRequest("phone_number_id (or assignee) is required")
        size = page_size(limit)
        start = decode_cursor(cursor, CHATS_PAGE, {"phone_number_id": phone_number_id})
        chats, last = self.inbox.chats.list_recent(phone_number_id, size, start)
        contacts = self.inbox.contacts.get_many(phone_number_id, [c.chat_id for c in chats])
        return {"items": [self._chat(c, contacts.get(c.chat_id)) for c in chats], "next": encode_cursor(last)}

    def chat_by_identifier(self, phone_number_id: str | None, wa_id: str | None, user_id: str | None) -> dict:
        """The chat of the customer a phone number or a BSUID (or parent BSUID) names, as a one-item
        listing (empty when nobody is known by it)."""
        if not phone_number_id or bool(wa_id) == bool(user_id):
            raise BadRequest("pass phone_number_id and exactly one of wa_id or user_id")
        kind = kind_of(wa_id or user_id or "")
        if kind is None or (kind is Kind.PHONE) != bool(wa_id):
            raise BadRequest("wa_id must be a phone number; user_id a business-scoped user id (BSUID) or parent BSUID")
        value = normalize_phone(wa_id) if wa_id else (user_id or "").strip()
        customer = self.inbox.customers.find(phone_number_id, kind, value)
        chat = self.inbox.chats.get(customer.customer_id, consistent=False) if customer else None
        if chat is None:
            return {"items": [], "next": None}
        contact = self.inbox.contacts.get_many(chat.phone_number_id, [chat.chat_id]).get(chat.chat_id)
        return {"items": [self._chat(chat, contact)], "next": None}

    def chats_of_agent(self, assignee: str, limit: str | None, cursor: str | None) -> dict:
        size = page_size(limit)
        start = decode_cursor(cursor, ASSIGNED_PAGE, {"assignee": assignee})
        chats, last = self.inbox.chats.list_of_agent(assignee, size, start)
        views = []
        for chat in chats:
            contact = self.inbox.contacts.get_many(chat.phone_number_id, [chat.chat_id]).get(chat.chat_id)
            views.append(self._chat(chat, contact))
        return {"items": views, "next": encode_cursor(last)}

    def chat(self, chat_id: str) -> dict:
        chat = self.inbox.chats.get(chat_id, consistent=False)
        if chat is None:
            raise NotFound(f"chat {chat_id} not found")
        contact = self.inbox.contacts.get_many(chat.phone_number_id, [chat.chat_id]).get(chat.chat_id)
        return self._chat(chat, contact)

    def messages(self, chat_id: str, limit: str | None, cursor: str | None) -> dict:
        self._split(chat_id)
        size = page_size(limit)
        start = decode_cursor(cursor, MESSAGES_PAGE, {"chat_id": chat_id})
        items, last = self.inbox.messages.list_for_chat(chat_id, size, start)
        # Messages can exist before their chat does (a status for a message sent elsewhere), and
        # after it, when a step still running as the chat was erased stored one: never served.
        if start is None and (not items or self.erased) and self.inbox.chats.get(chat_id, consistent=False) is None:
            if not items or self.erased(chat_id):
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
            "app_activity": self._app_activity(item, account),
        }

    def _app_activity(self, item: dict, account: dict | None) -> dict | None:
        """The 14-day rule for a coexistence number: days without a sign of the Business App."""
        quiet = quiet_of(item, account, int(self.clock()))
        if quiet is None:
            return None
        return {"days_without_app": quiet.days, "warned_at_days": quiet.warned_days,
                "disconnect_expected_at": iso(quiet.disconnect_expected_at)}

    @staticmethod
    def _split(chat_id: str) -> None:
        if not is_customer_id(chat_id):
            raise NotFound(f"chat {chat_id} not found")

    def _window_closing(self, chat, last_customer: int | None) -> dict | None:
        """The warning the agent was given that the window closes soon: this window's, while it is open."""
        expires = window.window_expires_at(last_customer)
        if expires is None or chat.window_warning_at is None or not window.is_open(last_customer, int(self.clock())):
            return None
        if chat.window_warning_at <= last_customer:
            return None  # given for an earlier window: the customer has written since
        name, _, language = (chat.window_warning_template or "").partition(":")
        return {"warned_at": iso(chat.window_warning_at), "closes_at": iso(expires),
                "template": {"name": name, "language": language or "en_US"} if name else None}

    def _chat(self, chat: Chat, contact: dict | None) -> dict:
        last_customer = chat.last_customer_message_at
        return {
            "chat_id": chat.chat_id,
            "phone_number_id": chat.phone_number_id,
            # Who the customer is: the phone number only when Meta shared it, the business-scoped
            # user id (BSUID) and the username (display only: it changes).
            "wa_id": chat.wa_id,
            "user_id": chat.user_id,
            "parent_user_id": chat.parent_user_id,
            "username": chat.username,
            "identity_changes": [
                {"kind": c.get("kind"), "at": iso(c.get("at")), "message_id": c.get("message_id")} for c in chat.identity_changes
            ],
            "merged_from": sorted(chat.merged_from),
            "merged_into": chat.merged_into,
            "contact_name": display_name(contact),
            "mode": chat.mode.value,
            "assignee": chat.assignee,
            "window_expires_at": iso(window.window_expires_at(last_customer)),
            "window_open": window.is_open(last_customer, int(self.clock())),
            "last_message_at": iso(chat.last_message_at),
            "last_customer_message_at": iso(last_customer),
            "last_app_activity_at": iso(chat.last_app_activity_at),
            "referral_at": iso(chat.referral_at),
            "free_entry_point_expires_at": iso(window.free_entry_point_expires_at(chat.referral_at, chat.entry_point_replied_at)),
            # The conversation workflow, step by step.
            "conversation_id": chat.conversation_id,
            "conversation_state": chat.conversation_state.value if chat.conversation_state else None,
            "waiting_for": waiting.value if (waiting := chat.waiting_at(int(self.clock()))) else None,
            "offered_to": chat.offered_to,
            "bot_intent": chat.bot_intent,
            "takeover_by": chat.takeover_by,
            "takeover_at": iso(chat.takeover_at),
            "queued_at": iso(chat.queued_at),
            "assigned_at": iso(chat.assigned_at),
            "first_human_reply_at": iso(chat.first_human_reply_at),
            "closed_at": iso(chat.closed_at),
            "window_warning_at": iso(chat.window_warning_at),
            "window_closing": self._window_closing(chat, last_customer),
            "satisfaction_score": chat.satisfaction_score,
            "reminder_context": _times_as_iso(chat.reminder_context),
        }


def _times_as_iso(context: dict | None) -> dict | None:
    """A reminder's context with its times (`*_at`, epoch seconds in the item) as ISO 8601."""
    if not context:
        return context
    return {k: iso(v) if k.endswith("_at") and v is not None and not isinstance(v, str) else v for k, v in context.items()}


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
        "campaign_id": item.get("campaign_id"),  # sent by a campaign, or a customer's reply to one
    }
