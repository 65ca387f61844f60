"""The satisfaction survey that ends a conversation: its question's buttons and the score an answer
gives. The close step sends it; ingest records the answer's score before it wakes the workflow."""

from __future__ import annotations

BUTTONS = (("csat_3", "😊 Great"), ("csat_2", "😐 Okay"), ("csat_1", "🙁 Poor"))
_PREFIX = "csat_"


def request(question: str) -> dict:
    """The survey as a send request: the question with one reply button per score."""
    return {"type": "interactive", "body": question, "buttons": [{"id": i, "title": t} for i, t in BUTTONS]}


def score_of(reply_id: str | None) -> int | None:
    """The score a tapped button gives; None for anything else the customer sends."""
    digits = (reply_id or "").removeprefix(_PREFIX)
    return int(digits) if (reply_id or "").startswith(_PREFIX) and digits.isdigit() else None
