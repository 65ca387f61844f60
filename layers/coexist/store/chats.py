"""Chats: one per business number and customer, listed newest first through `by_recent`."""

from __future__ import annotations

import time

from coexist.domain.records import ChatActivity, chat_id
from coexist.store.conditional import raise_to, update_if
from coexist.store.queries import index_page

BY_RECENT = "by_recent"

# Chat modes (ARCHITECTURE rule 3).
BOT, QUEUED, AGENT, APP, CLOSED = "bot", "queued", "agent", "app", "closed"


class ChatStore:
    def __init__(self, table):
        self.table = table

    def record_activity(self, activity: ChatActivity) -> None:
        """Move each activity time forward; an older webhook arriving late changes nothing."""
        key = {"phone_number_id": activity.phone_number_id, "wa_id": activity.wa_id}
        identity = {"chat_id": chat_id(activity.phone_number_id, activity.wa_id)}
        if activity.last_customer_message_at is not None:
            self._raise(key, "last_customer_message_at", activity.last_customer_message_at, identity, new_mode=BOT)
        if activity.last_app_activity_at is not None:
            # A person answered from the phone: the chat is theirs now (ARCHITECTURE rule 3).
            raise_to(self.table, key, "last_app_activity_at", activity.last_app_activity_at, {**identity, "mode": APP})
        if activity.referral_at is not None:
            raise_to(self.table, key, "referral_at", activity.referral_at, identity)
        if activity.last_message_at is not None:
            raise_to(self.table, key, "last_message_at", activity.last_message_at, identity)

    def _raise(self, key: dict, attribute: str, value: int, identity: dict, new_mode: str) -> None:
        """Raise `attribute`; a chat seen for the first time by this path also gets its mode."""
        update_if(
            self.table,
            Key=key,
            UpdateExpression="SET #a = :v, chat_id = :chat, #mode = if_not_exists(#mode, :mode), "
            "created_at = if_not_exists(created_at, :now)",
            ConditionExpression="attribute_not_exists(#a) OR #a < :v",
            ExpressionAttributeNames={"#a": attribute, "#mode": "mode"},
            ExpressionAttributeValues={":v": value, ":chat": identity["chat_id"], ":mode": new_mode, ":now": int(time.time())},
        )

    def raise_last_message(self, phone_number_id: str, wa_id: str, at: int) -> None:
        raise_to(self.table, {"phone_number_id": phone_number_id, "wa_id": wa_id}, "last_message_at", at,
                 {"chat_id": chat_id(phone_number_id, wa_id)})

    def get(self, phone_number_id: str, wa_id: str) -> dict | None:
        return self.table.get_item(Key={"phone_number_id": phone_number_id, "wa_id": wa_id}).get("Item")

    def list_recent(self, phone_number_id: str, limit: int, start_key: dict | None) -> tuple[list[dict], dict | None]:
        """Newest first. Chats without any message yet are not listed (no sort key)."""
        return index_page(self.table, BY_RECENT, "phone_number_id", phone_number_id, limit, start_key, newest_first=True)
