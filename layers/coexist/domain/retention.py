"""How long records are kept: the retention rule (docs/OPERATIONS.md, "Retention").

A table's records carry `expires_at` (Unix seconds, DynamoDB TTL) once they may go; DynamoDB removes
them within a few days of that time. Most records expire a fixed time after they were written. A
chat's messages are different: they are the record of care, so they never expire while the chat is
open, and a closed chat's messages expire only once the chat has stayed quiet for the retention
period and is not under a legal hold.

That decision is taken here, for one chat at a time, by the retention sweeper
(coexist.retention), which finds closed chats whose period has run out and only then stamps their
messages: closing, reopening, holding and lifting a hold cost no write per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from coexist.domain.chat import Chat, ChatMode

DAY_S = 86_400
KEPT_FOREVER = 0  # a retention of 0 days: records of that table never expire


def expires_at(written_at: int, retention_days: int) -> int | None:
    """When a record written at `written_at` may go (None: kept until erased)."""
    if retention_days == KEPT_FOREVER:
        return None
    return int(written_at) + retention_days * DAY_S


def quiet_since(chat: Chat) -> int | None:
    """From when a closed chat's retention counts: its close, or anything said in it after the close
    (a message can land on a closed chat before a new conversation starts). None: the chat is open."""
    if chat.mode != ChatMode.CLOSED or chat.closed_at is None:
        return None
    return max(chat.closed_at, chat.last_message_at or 0)


class Verdict(StrEnum):
    OPEN = "open"  # not closed (reopened since): nothing expires; the chat leaves the sweeper's index
    HELD = "held"  # a legal hold suspends the retention; looked at again on the next run
    NOT_YET = "not_yet"  # quiet for less than the retention (a message came after the close): later
    EXPIRE = "expire"  # the messages may go: each gets `expires_at`
    KEPT = "kept"  # the retention is 0 (kept forever): the chat leaves the sweeper's index


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    expires_at: int | None = None  # EXPIRE: the time the messages carry; NOT_YET: when it will be due
    counts_from: int | None = None  # NOT_YET: the new start of the quiet period


def decide(chat: Chat, held: bool, now: int, retention_days: int) -> Decision:
    """What the retention sweeper does with one chat it found closed long enough ago."""
    since = quiet_since(chat)
    if since is None:
        return Decision(Verdict.OPEN)
    if retention_days == KEPT_FOREVER:
        return Decision(Verdict.KEPT)
    if held:
        return Decision(Verdict.HELD)
    due = expires_at(since, retention_days)
    if due > now:
        return Decision(Verdict.NOT_YET, expires_at=due, counts_from=since)
    return Decision(Verdict.EXPIRE, expires_at=due)
