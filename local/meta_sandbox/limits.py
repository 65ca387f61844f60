"""Meta's two send limits, as the sandbox enforces them.

* Throughput per business number: at most `mps` accepted messages in any rolling one-second
  window (130429). A rolling window, not a per-second bucket, because that is the strictest
  reading of "N messages per second": a sender that paces only "on average" will be caught.
* Pair limit per (business number, customer): GCRA with emission interval `period_s` and a burst
  of `burst` (131056) — a burst of messages to one person is fine, a sustained stream is not.

Both only count accepted messages; a rejected request costs nothing (as far as anyone can tell
from outside Meta). Not thread-safe by themselves: the sandbox calls them under its state lock.
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 1.0


class RollingWindow:
    def __init__(self) -> None:
        self._accepted: dict[str, deque[float]] = {}

    def allows(self, key: str, limit: float, now: float) -> bool:
        window = self._accepted.setdefault(key, deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        return len(window) < limit

    def record(self, key: str, now: float) -> None:
        self._accepted.setdefault(key, deque()).append(now)

    def reset(self) -> None:
        self._accepted.clear()


class PairLimiter:
    """Generic cell rate algorithm: one theoretical arrival time per pair."""

    def __init__(self) -> None:
        self._arrival: dict[tuple[str, str], float] = {}

    def allows(self, pair: tuple[str, str], period_s: float, burst: int, now: float) -> bool:
        arrival = max(self._arrival.get(pair, now), now)
        return arrival - now <= (burst - 1) * period_s

    def record(self, pair: tuple[str, str], period_s: float, now: float) -> None:
        self._arrival[pair] = max(self._arrival.get(pair, now), now) + period_s

    def reset(self) -> None:
        self._arrival.clear()
