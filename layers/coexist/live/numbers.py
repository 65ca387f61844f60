"""The business number a streamed chat or message belongs to: a keys-only stream record carries the
item's keys and nothing else, so the number is read back from the item (one projected GetItem)."""

from __future__ import annotations

from collections.abc import Callable

from boto3.dynamodb.types import TypeDeserializer

NUMBER = "phone_number_id"
_deserialize = TypeDeserializer().deserialize


class ChangedNumbers:
    def __init__(self, tables: dict, hidden: dict[str, Callable[[dict], bool]] | None = None) -> None:
        self._tables = tables  # "chats" / "messages" (the stream's table, as coexist.live.events names it) -> Table
        # Per table, the items of it that no console shows, by their key (such as the chats table's
        # Connect contact map).
        self._hidden = hidden or {}

    def shown(self, table: str, keys: dict) -> bool:
        """Whether the item with these stream keys (DynamoDB JSON) is one a console shows."""
        hidden = self._hidden.get(table)
        return hidden is None or not hidden({name: _deserialize(value) for name, value in keys.items()})

    def of(self, table: str, keys: dict) -> str | None:
        """The number of the item with these stream keys (DynamoDB JSON); None when it is gone or
        the table is not one the live channel follows."""
        source = self._tables.get(table)
        if source is None or not keys:
            return None
        item = source.get_item(
            Key={name: _deserialize(value) for name, value in keys.items()},
            ProjectionExpression="#number", ExpressionAttributeNames={"#number": NUMBER},
        ).get("Item")
        number = (item or {}).get(NUMBER)
        return str(number) if number else None
