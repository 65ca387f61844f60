"""Chats of a number in one mode: the newest-first index, filtered on the mode as it is read."""

from __future__ import annotations

from coexist.store.chats import BY_RECENT, CLOSED


def recent_chats_in_mode(table, phone_number_id: str, mode: str | None, limit: int, start_key: dict | None):
    """One read of `by_recent` (newest first) keeping the chats in `mode` (all when None); returns
    (items, last_evaluated_key). A read can keep fewer than `limit` items: page on the key."""
    kwargs: dict = {
        "IndexName": BY_RECENT,
        "KeyConditionExpression": "phone_number_id = :number",
        "ExpressionAttributeValues": {":number": phone_number_id},
        "Limit": limit,
        "ScanIndexForward": False,
    }
    if mode:
        kwargs["ExpressionAttributeNames"] = {"#mode": "mode"}
        kwargs["ExpressionAttributeValues"][":mode"] = mode
        # A chat nobody has worked on yet has no mode; the API shows it as closed.
        kwargs["FilterExpression"] = "#mode = :mode" + (" OR attribute_not_exists(#mode)" if mode == CLOSED else "")
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    response = table.query(**kwargs)
    return response.get("Items", []), response.get("LastEvaluatedKey")
