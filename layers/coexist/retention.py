"""The retention sweeper: once a day, the closed chats quiet for longer than the messages' retention
have their messages stamped with `expires_at`, and DynamoDB's TTL removes them (at no write cost).

Why a sweeper rather than an expiry written at close: stamping a long chat's messages at every close
would be one write per message per close, and again per reopening, hold and lift. Here closing and
reopening only touch the chat item (store/chats.py), holds cost nothing, and each message is written
once, when its time has come (docs/OPERATIONS.md, "Retention").

A chat found under a legal hold is set aside (out of the index, its quiet period kept) until the hold
is lifted (`CustomerRights.clear_hold` calls `restore`). A hold set after the stamping takes the
stamps back (`CustomerRights.set_hold` calls `withdraw`), and the sweeper checks the hold again after
stamping, so a hold racing the sweeper never leaves stamps behind.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

from coexist.domain.retention import DAY_S, Verdict, decide
from coexist.resources import RETENTION_CHATS_PER_RUN, RETENTION_SHARDS
from coexist.store.chats import ChatRepository
from coexist.store.privacy import PrivacyStore
from coexist.store.retention import QUIET_FROM, MessageExpiry

log = logging.getLogger(__name__)


class RetentionSweeper:
    def __init__(self, chats: ChatRepository, messages: MessageExpiry, privacy: PrivacyStore, retention_days: int,
                 clock=time.time, per_run: int = RETENTION_CHATS_PER_RUN):
        self.chats = chats
        self.messages = messages
        self.privacy = privacy
        self.retention_days = retention_days
        self.clock = clock
        self.per_run = per_run

    def run(self) -> dict:
        """One pass over every shard; answers what it did (counts only)."""
        now = int(self.clock())
        outcome: Counter = Counter()
        if self.retention_days == 0:
            return {"retention_days": 0}  # kept until erased: nothing to look for
        before = now - self.retention_days * DAY_S
        for shard in range(RETENTION_SHARDS):
            budget, start = max(1, self.per_run // RETENTION_SHARDS), None  # every shard gets its turn each run
            while budget > 0:
                found, start = self.chats.retention.quiet_before(str(shard), before, budget, start)
                for item in found:
                    outcome[self._sweep(item["chat_id"], int(item[QUIET_FROM]), now, outcome)] += 1
                budget -= len(found)
                if not start:
                    break
        return {"retention_days": self.retention_days, **dict(outcome)}

    def _sweep(self, chat_id: str, seen_from: int, now: int, outcome: Counter) -> str:
        """Each chat found leaves the range of due chats, whatever the verdict: a run never finds it again."""
        chat = self.chats.get(chat_id)
        if chat is None:
            return "gone"
        decision = decide(chat, self.privacy.hold(chat_id) is not None, now, self.retention_days)
        if decision.verdict in (Verdict.OPEN, Verdict.KEPT):
            self.chats.retention.leave_index(chat_id, seen_from)
        elif decision.verdict == Verdict.HELD:
            self.chats.retention.set_aside(chat_id, seen_from)  # lifting the hold puts it back
        elif decision.verdict == Verdict.NOT_YET:
            self.chats.retention.count_from(chat_id, seen_from, decision.counts_from)
        elif decision.verdict == Verdict.EXPIRE:
            outcome["messages_stamped"] += self.messages.stamp_messages(chat_id, decision.expires_at)
            if self.privacy.hold(chat_id) is not None:  # a hold set while stamping wins
                self.messages.unstamp_messages(chat_id)
                self.chats.retention.set_aside(chat_id, seen_from)
                return Verdict.HELD.value
            self.chats.retention.mark_expired(chat_id, seen_from, decision.expires_at)
        return decision.verdict.value

    # --- legal holds (CustomerRights) ------------------------------------------------------------
    def withdraw(self, chat_id: str) -> int:
        """A legal hold was set: any expiry the chat's messages were given is taken back (a read of
        the chat's message ids; holds are rare). Returns how many messages it touched."""
        withdrawn = self.messages.unstamp_messages(chat_id)
        self.chats.retention.expiry_withdrawn(chat_id)
        if withdrawn:
            log.info("retention withdrawn under a legal hold", extra={"messages": withdrawn})
        return withdrawn

    def restore(self, chat_id: str) -> None:
        """The legal hold was lifted: a chat still closed waits for the sweeper again (its quiet
        period kept), which gives the expiry back if the retention has run out meanwhile."""
        self.chats.retention.back_in_index(chat_id)
