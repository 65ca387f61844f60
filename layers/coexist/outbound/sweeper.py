"""Messages left behind: stored for sending, but no longer on their way to the sender.

A message is stored `queued` first and put on the outbound queue second; when the second step
fails (the API answers 503 and the caller never retries), or its queue record is lost, nothing
would ever send it. The sweeper finds such messages through the sparse `unsent` index (messages
still `queued` or `sending`, by when they were last looked at) and puts them on the queue again.

That is always safe: the queue drops a copy of a record it already holds (deduplication by message
id), a FIFO group hands out one record at a time, and the sender sends only a message that is still
`queued` (one found `sending` is failed as `outcome_unknown`, see coexist.outbound.sender). A
message waiting for a throughput slot reserved in the future is left alone until that slot is due.
Each message looked at is not looked at again before the threshold has passed once more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from coexist.outbound.queue import OutboundQueue
from coexist.resources import STUCK_AFTER_S, SWEEP_LIMIT
from coexist.store.messages import UNSENT_SHARDS, MessageStore


@dataclass(frozen=True)
class SweepReport:
    """Counts only: what one sweep found and did."""

    found: int = 0  # unsent and not looked at for the threshold
    requeued: int = 0  # put on the outbound queue again
    waiting_for_slot: int = 0  # holding a throughput slot that is not due yet: left alone
    sending: int = 0  # of the requeued, those an interrupted attempt left `sending`


class Sweeper:
    def __init__(
        self,
        messages: MessageStore,
        queue: OutboundQueue,
        clock: Callable[[], float] = time.time,
        stuck_after_s: float = STUCK_AFTER_S,
        limit: int = SWEEP_LIMIT,
    ):
        self.messages = messages
        self.queue = queue
        self.clock = clock
        self.stuck_after_s = stuck_after_s
        self.limit = limit

    def sweep(self) -> SweepReport:
        now_ms = int(self.clock() * 1000)
        before_ms = now_ms - int(self.stuck_after_s * 1000)
        found = requeued = waiting = sending = 0
        for shard in range(UNSENT_SHARDS):
            if found >= self.limit:
                break  # the next run carries on: each message looked at moves out of reach for a while
            for item in self.messages.unsent_before(str(shard), before_ms, self.limit - found):
                found += 1
                slot_ms = int(item.get("send_slot_ms") or 0)
                if slot_ms > now_ms:
                    waiting += 1
                    self.messages.mark_checked(item["id"], slot_ms)
                    continue
                self.queue.enqueue(item["id"], item["phone_number_id"], item["chat_id"])
                self.messages.mark_checked(item["id"], now_ms)
                requeued += 1
                sending += item.get("status") == "sending"
        return SweepReport(found=found, requeued=requeued, waiting_for_slot=waiting, sending=sending)
