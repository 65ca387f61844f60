"""The consoles connected to the live channel: one item per open WebSocket connection, with the
numbers its person may see (an agent's or a supervisor's directory numbers, or `every_number` for
an admin), so that a change reaches only the consoles allowed to read it. An item that says
neither receives nothing: the default is closed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# API Gateway ends every WebSocket connection after two hours; an item outlives its socket only if
# $disconnect never ran (it is not guaranteed), and the TTL then removes it (within a day or two).
MAX_CONNECTION_S = 2 * 3600
EVERY_NUMBER = "*"  # how the authorizer's context says "an admin: every number" (context values are strings)


@dataclass(frozen=True)
class Listener:
    connection_id: str
    numbers: frozenset[str] | None  # None: every number

    def receives(self, phone_number_id: str | None) -> bool:
        """A change of a number's chat or message: for whoever may see that number. A change whose
        number is no longer known (the record is gone) only for those who see every number."""
        if self.numbers is None:
            return True
        return phone_number_id is not None and phone_number_id in self.numbers


def numbers_to_context(numbers: Iterable[str] | None) -> str:
    return EVERY_NUMBER if numbers is None else ",".join(sorted(numbers))


def numbers_from_context(value: str | None) -> frozenset[str] | None:
    """The authorizer's `numbers` back to a set; missing is no number at all (never every number)."""
    if value == EVERY_NUMBER:
        return None
    return frozenset(n for n in (value or "").split(",") if n)


class ConnectionStore:
    def __init__(self, table) -> None:
        self._table = table

    def add(self, connection_id: str, user: str, now: float, numbers: Iterable[str] | None = ()) -> None:
        item = {
            "connection_id": connection_id,
            "user": user,  # the Cognito subject (an opaque id), for tracing a connection to its person
            "connected_at": int(now),
            "expires_at": int(now) + MAX_CONNECTION_S,
        }
        if numbers is None:
            item["every_number"] = True
        else:
            item["numbers"] = sorted(set(numbers))
        self._table.put_item(Item=item)

    def remove(self, connection_id: str) -> None:
        self._table.delete_item(Key={"connection_id": connection_id})

    def listeners(self) -> Iterator[Listener]:
        """Every connection still recorded (a few hundred at most: one per open console)."""
        kwargs: dict = {"ProjectionExpression": "connection_id, numbers, every_number"}
        while True:
            page = self._table.scan(**kwargs)
            for item in page.get("Items", []):
                numbers = None if item.get("every_number") is True else frozenset(str(n) for n in item.get("numbers") or ())
                yield Listener(item["connection_id"], numbers)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
