"""DynamoDB's write request units by the size of what a write touches, read from the emulator's own
stored items (no request is made, so nothing is counted twice).

On-demand DynamoDB bills a write by the size of the item in 1 KB units, the larger of the item
before and after it (a refused conditional write still pays for the item it judged), twice within a
transaction, and every global secondary index the write changes pays for its own entry: one write
when the item enters or leaves the index, or changes a projected attribute, two when it moves to
other index keys (the old entry deleted, the new one put). Counting one unit per write, as the
request count does, holds only for small items outside every index; the chats sit in an inbox index
that every new message moves, and a Step Functions task token (hundreds of bytes on AWS, a few dozen
in the emulator, hence `token_bytes`) is sized as deployed wherever it is stored whole: in the task
tokens table, and on a chat written before chats held tokens by reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from coexist.domain import bot_phase
from coexist.store.task_tokens import REF_PREFIX

KB = 1024
# Attributes that hold a Step Functions task token, whole or by its reference (`ref:…`, as stored):
# a whole one is sized as a deployed token, not the emulator's. `token`: the task tokens table's.
TOKEN_ATTRIBUTES = frozenset({"workflow_token", "bot_token", "token"})


@dataclass(frozen=True)
class Entry:
    """An item as a write found it: its size and, per index it is in, that entry's keys and content."""

    size: int
    indexes: dict  # index name -> (index key values, the projected entry as stored, its size)


ABSENT = Entry(0, {})


def units(size: int) -> int:
    return math.ceil(size / KB)


class ItemSizes:
    """Entries of the items a write names, before and after it, from the emulator's backend."""

    def __init__(self, token_bytes: int):
        self.token_bytes = token_bytes

    @staticmethod
    def touched(operation: str, request: dict) -> list[tuple[str, dict]]:
        """(table, key) of every item the write names, in DynamoDB's wire format; a put's key is its
        whole item (the emulator picks the key attributes out of it)."""
        if operation in {"UpdateItem", "DeleteItem"}:
            return [(request["TableName"], request["Key"])]
        if operation == "PutItem":
            return [(request["TableName"], request["Item"])]
        if operation == "TransactWriteItems":
            found = []
            for element in request.get("TransactItems", []):
                (kind, body), = element.items()
                found.append((body["TableName"], body["Item"] if kind == "Put" else body["Key"]))
            return found
        if operation == "BatchWriteItem":
            return [(table, (r.get("PutRequest") or {}).get("Item") or r["DeleteRequest"]["Key"])
                    for table, requests in request.get("RequestItems", {}).items() for r in requests]
        return []

    def entry(self, table_name: str, key: dict) -> Entry:
        backend = _backend_holding(table_name)
        if backend is None:
            return ABSENT
        item = backend.get_item(table_name, key)
        if item is None:
            return ABSENT
        table = backend.get_table(table_name)
        indexes = {}
        for index in table.global_indexes:
            if all(name in item.attrs for name in index.schema_key_attrs):
                projected = index.project(item)
                indexes[index.name] = (tuple(item.attrs[n].cast_value for n in index.schema_key_attrs),
                                       projected.to_json(), self._size(projected))
        return Entry(self._size(item), indexes)

    def write_units(self, operation: str, before: list[Entry], after: list[Entry]) -> int:
        """What the write consumed: the items, twice in a transaction, and their index entries."""
        table = sum(max(1, units(max(b.size, a.size))) for b, a in zip(before, after))
        return table * (2 if operation == "TransactWriteItems" else 1) + sum(
            _index_units(b, a) for b, a in zip(before, after))

    def _size(self, item) -> int:
        """The item's size as DynamoDB counts it (names and values), task tokens at a deployed size."""
        return sum(len(name.encode()) + (self.token_bytes if _whole_token(name, value) else value.size())
                   for name, value in item.attrs.items())


def _whole_token(name: str, value) -> bool:
    """A Step Functions task token held whole (a bot phase's own token is what it is: sized as stored)."""
    stored = str(value.cast_value)
    return name in TOKEN_ATTRIBUTES and not stored.startswith(REF_PREFIX) and not bot_phase.is_bot_phase(stored)


def _index_units(before: Entry, after: Entry) -> int:
    total = 0
    for name in before.indexes.keys() | after.indexes.keys():
        old, new = before.indexes.get(name), after.indexes.get(name)
        if old is None or new is None:  # entered or left the index
            total += max(1, units((old or new)[2]))
        elif old[0] != new[0]:  # moved to other index keys: the old entry deleted, a new one put
            total += max(1, units(old[2])) + max(1, units(new[2]))
        elif old[1] != new[1]:  # a projected attribute changed in place
            total += max(1, units(max(old[2], new[2])))
    return total


def _backend_holding(table_name: str):
    """The emulator's DynamoDB backend (of whichever account and region) holding this table."""
    from moto.dynamodb.models import dynamodb_backends

    for regions in list(dynamodb_backends.values()):
        for backend in list(regions.values()):
            if table_name in backend.tables:
                return backend
    return None
