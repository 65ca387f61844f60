"""The audit trail's record: who did what to which chat, when, from where, and whether it was allowed.

Pure: the gate (coexist.authorization) builds an entry for every access decision it makes and hands
it to the audit log (coexist.store.audit) before the action runs. An entry that cannot be written
stops the action (fail closed): for health records an access nobody can account for must not happen.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum

from coexist.domain.access import Action

# Decisions about data that holds nothing of a customer's: recording every page load of the
# directory or the template list would bury the entries that matter.
NOT_AUDITED = frozenset({Action.READ_DIRECTORY, Action.READ_TEMPLATES})
SHARED_TOKEN_ACTOR = "api-token"  # local mode's shared token used without X-Agent-Id


def is_audited(action: Action | str) -> bool:
    """Every action is audited unless it is known to touch no customer data (so a new one is)."""
    return action not in NOT_AUDITED


class Outcome(str, Enum):
    ALLOWED = "allowed"
    REFUSED = "refused"


@dataclass(frozen=True)
class Caller:
    """Who is asking and from where, as the request tells it."""

    actor: str  # the principal's id (the Cognito user name deployed)
    role: str | None  # agent, supervisor, admin; None when in no Coexist group
    source_ip: str | None = None
    user_agent: str | None = None
    request: str | None = None  # "GET /api/chats/<chat id>/messages": the path, never the query string
    request_id: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    caller: Caller
    action: str
    outcome: Outcome
    chat_id: str | None = None
    reason: str | None = None  # why it was refused
    detail: dict = field(default_factory=dict)  # ids only (a number, a target agent, an export)
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    entry_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def day(self) -> str:
        return self.at.strftime("%Y-%m-%d")

    @property
    def sort_key(self) -> str:
        """Time first (entries list in time order), then the id (two entries of one millisecond)."""
        return f"{iso_ms(self.at)}#{self.entry_id}"


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class AuditUnavailable(Exception):
    """The entry could not be written: the action it describes must not go ahead."""


def recorder(write, caller: Caller):
    """The gate's audit hook for one request: each audited decision becomes an entry, written by
    `write` (which raises AuditUnavailable when it cannot)."""

    def audit(action, chat_id: str | None, refusal, detail: dict) -> None:
        if not is_audited(action):
            return
        write(AuditEntry(
            caller=caller,
            action=str(action.value if isinstance(action, Enum) else action),
            outcome=Outcome.ALLOWED if refusal is None else Outcome.REFUSED,
            chat_id=chat_id,
            reason=None if refusal is None else refusal.message,
            detail=detail,
        ))

    return audit
