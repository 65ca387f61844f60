"""The change event a console receives, the same local and deployed: `{"type": "changed", "by", "at"}`.

`by` names the table that changed ("chats" or "messages"); it never names a chat, a customer or a
message, so a console learns nothing it could not read through the API. Which consoles receive it
is decided by the changed record's number (coexist/live/connections.py, `Listener.receives`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


def change_event(by: str, at: float | None = None) -> dict:
    return {"type": "changed", "by": by, "at": time.time() if at is None else at}


def table_of(event_source_arn: str) -> str:
    """`arn:…:table/coexist-dev-chats/stream/2026-…` -> "chats": the table's name without its stage prefix."""
    try:
        name = event_source_arn.split(":table/", 1)[1].split("/", 1)[0]
    except IndexError:
        raise ValueError("not a DynamoDB stream ARN") from None
    return name.rsplit("-", 1)[-1]


def changed_tables(records: Iterable[dict]) -> list[str]:
    """The tables a batch of DynamoDB stream records changed, each once, in the order first seen."""
    seen: dict[str, None] = {}
    for record in records:
        seen.setdefault(table_of(record["eventSourceARN"]), None)
    return list(seen)


def changed_numbers(records: Iterable[dict], number_of: Callable[[str, dict], str | None],
                    shown: Callable[[str, dict], bool] = lambda table, keys: True) -> list[tuple[str, str | None]]:
    """Each (table, business number) a batch of keys-only stream records changed, once, in the order
    first seen. `number_of(table, keys)` finds the number of a record from its keys (None when the
    record is gone); it and `shown` are asked once per record key. A record of an item no console
    shows (`shown(table, keys)` false) changes nothing."""
    asked: dict[tuple, object] = {}
    seen: dict[tuple[str, str | None], None] = {}
    for record in records:
        table = table_of(record["eventSourceARN"])
        keys = (record.get("dynamodb") or {}).get("Keys") or {}
        key = (table, tuple(sorted((name, tuple(sorted(value.items()))) for name, value in keys.items())))
        if key not in asked:
            asked[key] = number_of(table, keys) if shown(table, keys) else _NOT_SHOWN
        if asked[key] is not _NOT_SHOWN:
            seen.setdefault((table, asked[key]), None)
    return list(seen)


_NOT_SHOWN = object()  # a record key whose item no console shows
