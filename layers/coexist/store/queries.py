"""The two read shapes every repository uses: one page of an index, and a batch of keys."""

from __future__ import annotations

BATCH_GET_LIMIT = 100  # DynamoDB's maximum keys per BatchGetItem


def index_page(table, index: str, key_name: str, key_value: str, limit: int, start_key: dict | None, newest_first: bool):
    """One page of an index partition, in sort-key order; returns (items, last_evaluated_key)."""
    kwargs = {
        "IndexName": index,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": key_name},
        "ExpressionAttributeValues": {":v": key_value},
        "Limit": limit,
        "ScanIndexForward": not newest_first,
    }
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    response = table.query(**kwargs)
    return response.get("Items", []), response.get("LastEvaluatedKey")


def batch_get(table, keys: list[dict], projection: str | None = None, consistent: bool = False) -> list[dict]:
    """Every existing item among `keys`, following DynamoDB's unprocessed keys."""
    client = table.meta.client  # the resource's client: plain Python values in and out
    found: list[dict] = []
    for start in range(0, len(keys), BATCH_GET_LIMIT):
        request_for_table: dict = {"Keys": keys[start : start + BATCH_GET_LIMIT]}
        if projection:
            request_for_table["ProjectionExpression"] = projection
        if consistent:
            request_for_table["ConsistentRead"] = True
        request: dict | None = {table.name: request_for_table}
        while request:
            response = client.batch_get_item(RequestItems=request)
            found += response["Responses"].get(table.name, [])
            request = response.get("UnprocessedKeys") or None
    return found
