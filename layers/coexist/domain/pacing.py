"""Throughput pacing (docs/ARCHITECTURE.md rule 6) as the generic cell rate algorithm (GCRA).

A bucket stores one number, the theoretical arrival time (TAT). A send at `now` reserves the slot
`max(tat, now) + period`; it may go once `new_tat - burst * period` has passed (`reserve` says how
the round trip of the write that books it is allowed for). Reserving a future slot and waiting for
it loses no capacity under concurrency: each conditional write reserves a distinct slot.
"""

from __future__ import annotations

from dataclasses import dataclass

MICROS = 1_000_000


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int = 1

    @property
    def period_us(self) -> int:
        return max(1, round(MICROS / self.per_second))


@dataclass(frozen=True)
class Reservation:
    new_tat_us: int
    wait_us: int  # how long the caller must wait before sending


def reserve(tat_us: int | None, now_us: int, rate: Rate, departure_allowance_us: int = 0) -> Reservation:
    """The next slot of a bucket last booked to `tat_us`, asked for at `now_us`.

    A send leaves only once the write that booked its slot has returned: at its slot when that is
    still ahead, up to a write's round trip after `now_us` when it is not (an idle bucket's first
    slot is `now_us` itself). The slot after it is counted from the later of the two
    (`departure_allowance_us`, the longest round trip allowed for), so that a send that left late
    is never followed by one less than a period after it. A bucket booked further ahead than the
    allowance is unaffected; the first send from an idle bucket still leaves at once."""
    base = max(tat_us or 0, now_us)
    allowed_at = base + rate.period_us - rate.burst * rate.period_us
    new_tat = max(base, now_us + departure_allowance_us) + rate.period_us
    return Reservation(new_tat_us=new_tat, wait_us=max(0, allowed_at - now_us))
