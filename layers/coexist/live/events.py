"""The change event a console receives, the same local and deployed: `{"type": "changed", "by", "at"}`.

`by` names what changed (locally the function that wrote, deployed the table); it never names a
chat, a customer or a message, so a console learns nothing it could not read through the API.
"""

from __future__ import annotations

import time
from collections.abc import Iterable


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
