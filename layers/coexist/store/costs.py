"""The cost ledger (coexist.resources.COSTS): one entry per priced message, per business number.

Entries are keyed by message id, so a webhook delivered twice writes one entry. Meta's own pricing
replaces an entry our rules wrote first (the status carrying `pricing` can arrive after the one
without), never the other way round.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from coexist.domain.costs import META, RULE
from coexist.domain.retention import expires_at
from coexist.store.conditional import is_condition_failure, put_if_absent

BY_TIME = "by_time"


class CostLedger:
    def __init__(self, table, retention_days: int = 0):
        self.table = table
        self.retention_days = retention_days

    def record(self, entry: dict) -> bool:
        """Write an entry (with `phone_number_id`, `message_id`, `at`, `basis`); False when the
        ledger already held a better one for that message."""
        entry = {k: v for k, v in entry.items() if v is not None}
        if (expires := expires_at(int(entry["at"]), self.retention_days)) is not None:
            entry["expires_at"] = expires
        if entry["basis"] != META:
            return put_if_absent(self.table, entry, "message_id")
        try:
            self.table.put_item(
                Item=entry,
                ConditionExpression="attribute_not_exists(message_id) OR #basis = :rule",
                ExpressionAttributeNames={"#basis": "basis"},
                ExpressionAttributeValues={":rule": RULE},
            )
            return True
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise

    def get(self, phone_number_id: str, message_id: str) -> dict | None:
        return self.table.get_item(Key={"phone_number_id": phone_number_id, "message_id": message_id}).get("Item")

    def between(self, phone_number_id: str, start: int, end: int, limit: int) -> tuple[list[dict], bool]:
        """A number's entries with `start <= at < end`, oldest first, at most `limit`; and whether
        there were more."""
        items: list[dict] = []
        kwargs = {
            "IndexName": BY_TIME,
            "KeyConditionExpression": "phone_number_id = :n AND #at BETWEEN :start AND :end",
            "ExpressionAttributeNames": {"#at": "at"},
            "ExpressionAttributeValues": {":n": phone_number_id, ":start": start, ":end": end - 1},
        }
        while True:
            response = self.table.query(**kwargs)
            items += response.get("Items", [])
            if len(items) > limit:
                return items[:limit], True
            if not response.get("LastEvaluatedKey"):
                return items, False
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
