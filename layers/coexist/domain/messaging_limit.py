"""Meta's messaging limit (docs/ARCHITECTURE.md rule 14): how many unique customers a business
portfolio may reach with business-initiated templates outside a customer-service window in a
rolling 24 hours — 250, 2,000, 10,000, 100,000 or unlimited.

Pure. The reached customers are counted in hour buckets (the ledger, `store/campaigns.py`): the
rolling 24 h are the current hour and the 23 before it, so a customer counts a little longer than
Meta counts it, never shorter — a campaign waits an hour too long at worst, and never sends into
the limit.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR_S = 3600
WINDOW_HOURS = 24
UNLIMITED = -1
TIERS = (250, 2_000, 10_000, 100_000, UNLIMITED)
# Before the tier is known (no webhook yet, nobody set it): Meta's starting tier for a new portfolio.
DEFAULT_LIMIT = 250
# `current_limit` of phone_number_quality_update (deprecated by Meta for
# `max_daily_conversations_per_business`, which carries the number itself, -1 for unlimited).
_NAMED = {"TIER_50": 50, "TIER_250": 250, "TIER_1K": 1_000, "TIER_2K": 2_000, "TIER_10K": 10_000,
          "TIER_100K": 100_000, "TIER_UNLIMITED": UNLIMITED}


def limit_of(value) -> int | None:
    """A limit as Meta writes it (`TIER_2K`, `"2000"`, 2000, `-1`), or None if it names none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value == UNLIMITED or value > 0 else None
    if isinstance(value, str):
        text = value.strip().upper()
        if text in _NAMED:
            return _NAMED[text]
        if text.lstrip("-").isdigit():
            return limit_of(int(text))
    return None


def hour_of(at: float) -> int:
    return int(at) // HOUR_S


def window_hours(now: float) -> range:
    """The hour buckets inside the rolling window at `now`."""
    current = hour_of(now)
    return range(current - WINDOW_HOURS + 1, current + 1)


@dataclass(frozen=True)
class Room:
    reached: int  # unique customers counted in the window
    limit: int  # UNLIMITED for no limit
    free_at: float | None = None  # when there will be room for the asked number, if there is none now

    @property
    def unlimited(self) -> bool:
        return self.limit == UNLIMITED

    @property
    def left(self) -> int | None:
        return None if self.unlimited else max(0, self.limit - self.reached)


def room_for(wanted: int, limit: int, reached_by_hour: dict[int, int], now: float) -> Room:
    """Whether `wanted` more customers fit in the window now; if not, when they will (the hours that
    roll out of the window free their customers)."""
    hours = window_hours(now)
    counted = {h: n for h, n in reached_by_hour.items() if h in hours}
    reached = sum(counted.values())
    if limit == UNLIMITED or reached + wanted <= limit:
        return Room(reached, limit)
    need = reached + wanted - limit
    freed = 0
    for hour in sorted(counted):
        freed += counted[hour]
        if freed >= need:
            return Room(reached, limit, free_at=float((hour + WINDOW_HOURS) * HOUR_S))
    # More wanted than the tier allows at all: it waits for the whole window to roll.
    return Room(reached, limit, free_at=float((hours.stop + WINDOW_HOURS - 1) * HOUR_S))
