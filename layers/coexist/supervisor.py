"""What a supervisor watches on a number: the queue and how long people wait in it, how fast
agents first answer and resolve, the customers' satisfaction, and messages per day by source.

Computed on request from the last `days` of activity with index range queries only (no Scan):
the number's most recently active chats (at most `MAX_CHATS`; the answer says when it is a
sample) and each one's messages in the period.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from datetime import datetime, timezone

from coexist.domain.chat import ChatMode
from coexist.domain.records import Source
from coexist.reads import BadRequest, iso
from coexist.store.items import from_item_value

MAX_CHATS = 200
MAX_MESSAGES_PER_CHAT = 2000
MAX_DAYS = 31
SOURCES = tuple(s.value for s in (Source.CUSTOMER, Source.BOT, Source.AGENT, Source.BUSINESS_APP, Source.CAMPAIGN, Source.HISTORY))
DAY = 86_400


def spread(values: list[float]) -> dict:
    """Median, 90th percentile and maximum (seconds), or nulls when there is nothing to measure."""
    if not values:
        return {"count": 0, "median_s": None, "p90_s": None, "max_s": None}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"count": len(ordered), "median_s": round(statistics.median(ordered)), "p90_s": round(p90), "max_s": round(ordered[-1])}


def day_of(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d")


class Supervisor:
    def __init__(self, inbox, clock=time.time):
        self.inbox = inbox
        self.clock = clock

    def dashboard(self, phone_number_id: str, days: int) -> dict:
        if not 1 <= days <= MAX_DAYS:
            raise BadRequest(f"days must be between 1 and {MAX_DAYS}")
        now = int(self.clock())
        first_day = now - now % DAY - (days - 1) * DAY  # whole UTC days, today included
        chats, sampled = self.inbox.chats.active_since(phone_number_id, first_day, MAX_CHATS)

        queued = [c for c in chats if c.mode == ChatMode.QUEUED and c.queued_at]
        answered = [c for c in chats if c.queued_at and c.first_human_reply_at and c.queued_at >= first_day]
        resolved = [c for c in chats if c.queued_at and c.closed_at and c.closed_at >= first_day and c.closed_at >= c.queued_at]
        scores = [c.satisfaction_score for c in chats if c.satisfaction_score and (c.closed_at or now) >= first_day]

        per_day = {day_of(first_day + i * DAY): Counter() for i in range(days)}
        for chat in chats:
            for message in self.inbox.messages.counted_since(chat.chat_id, first_day, MAX_MESSAGES_PER_CHAT):
                message = from_item_value(message)
                day = per_day.get(day_of(int(message["timestamp"])))
                if day is not None:
                    day[Source.HISTORY.value if message.get("is_history") else message.get("source") or Source.CUSTOMER.value] += 1

        return {
            "phone_number_id": phone_number_id,
            "days": days,
            "since": iso(first_day),
            "generated_at": iso(now),
            "chats_considered": len(chats),
            "sampled": sampled,  # more chats were active than MAX_CHATS: the figures are of the newest
            "queue": {"length": len(queued), "waiting": spread([now - c.queued_at for c in queued])},
            "first_response": spread([c.first_human_reply_at - c.queued_at for c in answered]),
            "resolution": spread([c.closed_at - c.queued_at for c in resolved]),
            "satisfaction": {
                "responses": len(scores),
                "average": round(sum(scores) / len(scores), 2) if scores else None,
                "distribution": {str(score): scores.count(score) for score in (1, 2, 3)},
            },
            "messages_per_day": [{"day": day, **{source: counts.get(source, 0) for source in SOURCES}} for day, counts in per_day.items()],
        }
