"""Delivery status of a message (docs/ARCHITECTURE.md rule 4): it only ever moves forward."""

from __future__ import annotations

# `failed` ranks above `sent` (a failure report supersedes "sent") but below `delivered`: a
# delivery or read receipt is proof the message arrived, so a contradictory late `failed` does not
# undo it (its errors are still recorded).
# `sending` (ours: Meta is being called) ranks with `queued`: neither has reached Meta as far as we
# know, and any answer or status from Meta moves the message past both.
STATUS_RANK: dict[str, int] = {
    "queued": 0,
    "sending": 0,
    "accepted": 1,
    "sent": 2,
    "failed": 3,
    "delivered": 4,
    "read": 5,
    "played": 6,
}

# `history_context.status` of imported messages, as the phone app saw them.
HISTORY_STATUS: dict[str, str] = {
    "PENDING": "queued",
    "SERVER_ACK": "sent",
    "SENT": "sent",
    "DELIVERY_ACK": "delivered",
    "DELIVERED": "delivered",
    "READ": "read",
    "PLAYED": "played",
    "ERROR": "failed",
    "FAILED": "failed",
}


def rank(status: str) -> int | None:
    """The status's place in the order, or None for a status this version does not know."""
    return STATUS_RANK.get(status)


def history_status(raw: str | None) -> str | None:
    if not raw:
        return None
    return HISTORY_STATUS.get(raw.upper(), raw.lower())
