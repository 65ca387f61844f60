"""The business number a streamed chat or message belongs to: a keys-only stream record carries the
item's keys and nothing else, so the number is read back from the item (one projected GetItem)."""

from __future__ import annotations

from boto3.dynamodb.types import TypeDeserializer

NUMBER = "phone_number_id"
_deserialize = TypeDeserializer().deserialize


class ChangedNumbers:
    def __init__(self, tables: dict) -> None:
        self._tables = tables  # "chats" / "messages" (the stream's table, as coexist.live.events names it) -> Table

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
