"""Recent activity of a number, for the supervisor's figures: its chats active since a time (the
newest-first index, by range) and each one's messages since then (the chat's index, by range)."""

from __future__ import annotations

from boto3.dynamodb.conditions import Key

from coexist.store.chats import BY_RECENT
from coexist.store.messages import BY_CHAT


def chats_active_since(table, phone_number_id: str, since: int, cap: int) -> tuple[list[dict], bool]:
    """The chats with a message at or after `since`, newest first, at most `cap`; and whether
    there were more than `cap`."""
    found: list[dict] = []
    kwargs: dict = {
        "IndexName": BY_RECENT,
        "KeyConditionExpression": Key("phone_number_id").eq(phone_number_id) & Key("last_message_at").gte(since),
        "ScanIndexForward": False,
        "Limit": cap + 1,
    }
    while True:
        response = table.query(**kwargs)
        found += response.get("Items", [])
        if len(found) > cap or "LastEvaluatedKey" not in response:
            return found[:cap], len(found) > cap
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def messages_since(table, chat_id: str, since: int, cap: int) -> list[dict]:
    """The chat's messages from `since` on (oldest first), only what counting needs, at most `cap`."""
    found: list[dict] = []
    kwargs: dict = {
        "IndexName": BY_CHAT,
        "KeyConditionExpression": Key("chat_id").eq(chat_id) & Key("position").gte(f"{since:011d}"),
        "ProjectionExpression": "#src, #ts, is_history",
        "ExpressionAttributeNames": {"#src": "source", "#ts": "timestamp"},
    }
    while len(found) < cap:
        response = table.query(**kwargs)
        found += response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return found[:cap]
