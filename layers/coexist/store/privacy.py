"""Customers' rights in DynamoDB: legal holds, the erasure list and export requests (ids only)."""

from __future__ import annotations

import secrets
import string
import time

from coexist.domain.retention import expires_at
from coexist.store.conditional import update_if
from coexist.store.items import from_item_value

ERASURES = "erasure"
HOLD = "hold"
ERASED = "erased"  # beside a chat's hold: the chat was erased (the reader answers 404 for what a late step wrote)
EXPORT = "export"


def new_export_id() -> str:
    return "x" + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(24))


def _chat_key(chat_id: str, sk: str = HOLD) -> dict:
    return {"pk": f"chat#{chat_id}", "sk": sk}


def _export_key(export_id: str) -> dict:
    return {"pk": f"export#{export_id}", "sk": EXPORT}


class PrivacyStore:
    def __init__(self, table, export_retention_days: int = 0, clock=time.time):
        self.table = table
        self.export_retention_days = export_retention_days  # export requests only: holds and erasures stay
        self.clock = clock

    # --- legal holds ---------------------------------------------------------------------------
    def hold(self, chat_id: str) -> dict | None:
        item = self.table.get_item(Key=_chat_key(chat_id), ConsistentRead=True).get("Item")
        return from_item_value(item) if item else None

    def set_hold(self, chat_id: str, by: str, at: str, reason: str | None) -> dict:
        item = {**_chat_key(chat_id), "chat_id": chat_id, "set_by": by, "set_at": at, **({"reason": reason} if reason else {})}
        self.table.put_item(Item=item)
        return from_item_value(item)

    def clear_hold(self, chat_id: str) -> bool:
        old = self.table.delete_item(Key=_chat_key(chat_id), ReturnValues="ALL_OLD").get("Attributes")
        return old is not None

    # --- the erasure list ----------------------------------------------------------------------
    def record_erasure(self, chat_id: str, phone_number_id: str | None, by: str, at: str,
                       chat_ids: list[str] | None = None) -> dict:
        """Written before anything is erased: a restore from backup re-applies every entry. Besides
        the list's entry, each erased chat id (`chat_ids`: the chat and the customers merged into it)
        is marked erased, so that what a step still running wrote under it afterwards is never
        served, and is removed again by the next replay (`coexist.privacy.ErasureReplay`)."""
        chat_ids = list(dict.fromkeys([chat_id, *(chat_ids or [])]))
        item = {"pk": ERASURES, "sk": f"{at}#{chat_id}", "chat_id": chat_id, "chat_ids": chat_ids, "erased_by": by,
                "erased_at": at, **({"phone_number_id": phone_number_id} if phone_number_id else {})}
        with self.table.batch_writer() as batch:
            batch.put_item(Item=item)
            for erased in chat_ids:
                batch.put_item(Item={**_chat_key(erased, ERASED), "chat_id": erased, "erased_at": at})
        return from_item_value(item)

    def erased(self, chat_id: str) -> bool:
        """Was this chat erased? (Asked only of a chat whose item is gone.)"""
        return "Item" in self.table.get_item(Key=_chat_key(chat_id, ERASED), ProjectionExpression="pk")

    def erasures(self, since: str = "0") -> list[dict]:
        items, start = [], None
        while True:
            kwargs = {"KeyConditionExpression": "pk = :p AND sk >= :s", "ExpressionAttributeValues": {":p": ERASURES, ":s": since}}
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self.table.query(**kwargs)
            items += response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return [from_item_value(i) for i in items]

    # --- exports -------------------------------------------------------------------------------
    def new_export(self, chat_id: str, by: str, at: str) -> dict:
        item = {**_export_key(new_export_id()), "chat_id": chat_id, "requested_by": by, "requested_at": at, "status": "pending"}
        item["export_id"] = item["pk"].split("#", 1)[1]
        if (expires := expires_at(int(self.clock()), self.export_retention_days)) is not None:
            item["expires_at"] = expires
        self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        return from_item_value(item)

    def export(self, export_id: str) -> dict | None:
        item = self.table.get_item(Key=_export_key(export_id), ConsistentRead=True).get("Item")
        return from_item_value(item) if item else None

    def finish_export(self, export_id: str, key: str, at: str) -> bool:
        return update_if(
            self.table, Key=_export_key(export_id),
            UpdateExpression="SET #s = :done, object_key = :k, completed_at = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":done": "done", ":k": key, ":t": at},
        )

    def fail_export(self, export_id: str, reason: str, at: str) -> bool:
        return update_if(
            self.table, Key=_export_key(export_id),
            UpdateExpression="SET #s = :failed, failure = :r, completed_at = :t",
            ConditionExpression="attribute_exists(pk) AND #s <> :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":failed": "failed", ":r": reason, ":t": at, ":done": "done"},
        )
