"""Step Functions task tokens, kept under a short reference that the chats hold instead.

A task token is hundreds of bytes (up to 2 KB). On the chat, where a conversation's waits are
parked, it took the item over a kilobyte: every write of the chat, and of each of its inbox index
entries, cost twice the write units while a conversation lived. The chat now holds `ref(token)`, a
digest of a few dozen bytes, which its conditions compare as they compared the token; the token
itself is put here once (`keep`) and read back only by whoever takes a wait off the chat to signal
it (`resolve`).

A chat written before holds a whole token: `resolve` gives it back as it is, and the conditions that
name a token accept either form (`forms`, and the repository's conditions), so executions in flight
across an upgrade go on.
"""

from __future__ import annotations

import base64
import hashlib
import time

from coexist.domain import bot_phase
from coexist.resources import TASK_TOKEN_LIFETIME_S
from coexist.store.memo import BoundedMemo

REF_PREFIX = "ref:"


def ref(token: str) -> str:
    """The token's reference: 128 bits of its SHA-256, so two tokens never share one."""
    return REF_PREFIX + base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()[:16]).decode().rstrip("=")


def forms(token: str) -> tuple[str, str]:
    """What a chat may hold for `token`: its reference, or (written before references, or a bot
    phase's token) the token."""
    return ref(token), token


def names(stored: str | None, token: str) -> bool:
    """Whether a chat's `workflow_token` / `bot_token` value stands for `token`."""
    return stored is not None and stored in forms(token)


class TaskTokens:
    def __init__(self, table, clock=time.time):
        self.table = table
        self.clock = clock
        # The references this process has kept: a bot's turns park the same token again and again
        # (in a warm instance), and it is put once.
        self._kept = BoundedMemo(capacity=2_000)

    @staticmethod
    def reference(token: str) -> str:
        """What a chat written by this process holds for `token` (to compare, not to store)."""
        return token if bot_phase.is_bot_phase(token) else ref(token)

    def keep(self, token: str) -> str:
        """The reference to store on the chat, with the token put here unless this process did. A bot
        phase's token is no task token: short and no credential, the chat holds it whole."""
        if bot_phase.is_bot_phase(token):
            return token
        reference = ref(token)
        if self._kept.get(reference) is None:
            self.table.put_item(Item={"ref": reference, "token": token,
                                      "expires_at": int(self.clock()) + TASK_TOKEN_LIFETIME_S})
            self._kept.put(reference, True)
        return reference

    def resolve(self, stored: str | None) -> str | None:
        """The token a chat's value stands for: kept before the chat was written, so a strongly
        consistent read finds it (a read unit, a fifth of a write's price). A value that is no
        reference is a token written before them."""
        if stored is None or not stored.startswith(REF_PREFIX):
            return stored
        item = self.table.get_item(Key={"ref": stored}, ConsistentRead=True).get("Item")
        if item is None:
            raise LookupError(f"task token {stored} is not kept")  # kept a year and a day: longer than any wait
        return item["token"]


class WholeTokens:
    """Tokens held whole on the chat, as before references: for a repository with no token table."""

    @staticmethod
    def reference(token: str) -> str:
        return token

    @staticmethod
    def keep(token: str) -> str:
        return token

    @staticmethod
    def resolve(stored: str | None) -> str | None:
        return stored
