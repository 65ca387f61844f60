"""What the retention sweeper reads and writes (coexist.retention, coexist.domain.retention): the
chat repository's retention part (`ChatRetention`, held by `ChatRepository`, the one writer of the
chats table) and the stamping of messages (`MessageExpiry`).

A closed chat carries the keys of the chats' sparse `retention` index: its shard and when it went
quiet (`retention_from`), written in the same update that closes it (store/chats.py) and removed by
any move that reopens it, so closing and reopening cost no extra request. Once a chat's period has
run out its messages get `expires_at`, one update each, the only per-message writes retention makes;
the chat then records `messages_expire_at` and leaves the index.
"""

from __future__ import annotations

import hashlib

from coexist.resources import RETENTION_SHARDS
from coexist.store.conditional import update_if
from coexist.store.messages import BY_CHAT

RETENTION_INDEX = "retention"
SHARD = "retention_shard"
QUIET_FROM = "retention_from"
EXPIRED = "messages_expire_at"  # on the chat: its messages were given this expiry
RETENTION_KEYS = (SHARD, QUIET_FROM)
TTL = "expires_at"


def retention_shard(chat_id: str) -> str:
    return str(int(hashlib.sha256(chat_id.encode()).hexdigest()[:8], 16) % RETENTION_SHARDS)


def retention_keys(chat_id: str, quiet_from: int) -> dict:
    """What a chat being closed carries into the `retention` index."""
    return {SHARD: retention_shard(chat_id), QUIET_FROM: int(quiet_from)}


class ChatRetention:
    """The chats' `retention` index: the chat repository's (`ChatRepository.retention`)."""

    def __init__(self, table):
        self.table = table

    def quiet_before(self, shard: str, before: int, limit: int, start: dict | None = None) -> tuple[list[dict], dict | None]:
        """Closed chats of a shard quiet since before `before`, longest quiet first: their ids and
        when they went quiet."""
        kwargs: dict = {
            "IndexName": RETENTION_INDEX,
            "KeyConditionExpression": f"{SHARD} = :shard AND {QUIET_FROM} < :before",
            "ExpressionAttributeValues": {":shard": shard, ":before": before},
            "ProjectionExpression": f"chat_id, {QUIET_FROM}",
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = self.table.query(**kwargs)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    def leave_index(self, chat_id: str, seen_from: int) -> bool:
        """The chat was reopened (or is kept forever): out of the index, unless it closed again since."""
        return update_if(self.table, Key={"chat_id": chat_id}, UpdateExpression=f"REMOVE {SHARD}, {QUIET_FROM}",
                         ConditionExpression=f"{QUIET_FROM} = :seen", ExpressionAttributeValues={":seen": seen_from})

    def count_from(self, chat_id: str, seen_from: int, quiet_from: int) -> bool:
        """Something was said after the close: the quiet period starts then."""
        return update_if(self.table, Key={"chat_id": chat_id}, UpdateExpression=f"SET {QUIET_FROM} = :q",
                         ConditionExpression=f"{QUIET_FROM} = :seen", ExpressionAttributeValues={":q": quiet_from, ":seen": seen_from})

    def mark_expired(self, chat_id: str, seen_from: int, expires_at: int) -> bool:
        return update_if(self.table, Key={"chat_id": chat_id}, UpdateExpression=f"SET {EXPIRED} = :e REMOVE {SHARD}",
                         ConditionExpression=f"{QUIET_FROM} = :seen", ExpressionAttributeValues={":e": expires_at, ":seen": seen_from})

    def expired_at(self, chat_id: str) -> int | None:
        """When the chat's messages were given to expire (None: they were not)."""
        item = self.table.get_item(Key={"chat_id": chat_id}, ProjectionExpression=EXPIRED, ConsistentRead=True).get("Item") or {}
        return int(item[EXPIRED]) if EXPIRED in item else None

    def set_aside(self, chat_id: str, seen_from: int) -> bool:
        """Under a legal hold: out of the index (so the daily runs do not read it again and again),
        keeping when it went quiet for `back_in_index` once the hold is lifted."""
        return update_if(self.table, Key={"chat_id": chat_id}, UpdateExpression=f"REMOVE {SHARD}",
                         ConditionExpression=f"{QUIET_FROM} = :seen", ExpressionAttributeValues={":seen": seen_from})

    def expiry_withdrawn(self, chat_id: str) -> None:
        """A legal hold took the expiry back from the chat's messages."""
        update_if(self.table, Key={"chat_id": chat_id}, UpdateExpression=f"REMOVE {EXPIRED}",
                  ConditionExpression=f"attribute_exists({EXPIRED})")

    def back_in_index(self, chat_id: str) -> bool:
        """A legal hold was lifted: a chat still closed (it kept when it went quiet) waits in the index
        again, and the next run gives its messages their expiry if the retention has run out."""
        return update_if(self.table, Key={"chat_id": chat_id}, UpdateExpression=f"SET {SHARD} = :shard",
                         ConditionExpression=f"attribute_exists({QUIET_FROM})", ExpressionAttributeValues={":shard": retention_shard(chat_id)})

class MessageExpiry:
    """`expires_at` on a chat's messages: given when the chat's retention has run out, taken back
    under a legal hold."""

    def __init__(self, messages_table):
        self.messages = messages_table

    def _message_ids(self, chat_id: str, only_stamped: bool = False) -> list[str]:
        ids, kwargs = [], {
            "IndexName": BY_CHAT, "KeyConditionExpression": "chat_id = :chat",
            "ExpressionAttributeValues": {":chat": chat_id}, "ProjectionExpression": f"id, {TTL}",
        }
        while True:
            response = self.messages.query(**kwargs)
            ids += [i["id"] for i in response.get("Items", []) if not only_stamped or TTL in i]
            if "LastEvaluatedKey" not in response:
                return ids
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def stamp_messages(self, chat_id: str, expires_at: int) -> int:
        """Every message of the chat gets `expires_at`; a message that left the chat meanwhile (a
        merge moved it, an erasure removed it) is left alone. Returns how many were stamped."""
        return sum(
            update_if(self.messages, Key={"id": message_id}, UpdateExpression=f"SET {TTL} = :e",
                      ConditionExpression="chat_id = :chat", ExpressionAttributeValues={":e": expires_at, ":chat": chat_id})
            for message_id in self._message_ids(chat_id)
        )

    def unstamp_messages(self, chat_id: str) -> int:
        """The expiry is withdrawn from every message of the chat that carries one."""
        return sum(
            update_if(self.messages, Key={"id": message_id}, UpdateExpression=f"REMOVE {TTL}",
                      ConditionExpression=f"attribute_exists({TTL})")
            for message_id in self._message_ids(chat_id, only_stamped=True)
        )
