"""The consoles connected to the live channel: one item per open WebSocket connection."""

from __future__ import annotations

from collections.abc import Iterator

# API Gateway ends every WebSocket connection after two hours; an item outlives its socket only if
# $disconnect never ran (it is not guaranteed), and the TTL then removes it (within a day or two).
MAX_CONNECTION_S = 2 * 3600


class ConnectionStore:
    def __init__(self, table) -> None:
        self._table = table

    def add(self, connection_id: str, user: str, now: float) -> None:
        self._table.put_item(Item={
            "connection_id": connection_id,
            "user": user,  # the Cognito subject (an opaque id), for tracing a connection to its person
            "connected_at": int(now),
            "expires_at": int(now) + MAX_CONNECTION_S,
        })

    def remove(self, connection_id: str) -> None:
        self._table.delete_item(Key={"connection_id": connection_id})

    def ids(self) -> Iterator[str]:
        """Every connection still recorded (a few hundred at most: one per open console)."""
        kwargs: dict = {"ProjectionExpression": "connection_id"}
        while True:
            page = self._table.scan(**kwargs)
            for item in page.get("Items", []):
                yield item["connection_id"]
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
