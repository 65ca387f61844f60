"""Throughput pacing (docs/ARCHITECTURE.md rule 6) as the generic cell rate algorithm (GCRA).

A bucket stores one number, the theoretical arrival time (TAT). A send at `now` reserves the slot
`max(tat, now) + period`; it may go once `new_tat - burst * period` has passed. Reserving a future
slot and waiting for it loses no capacity under concurrency: each conditional write reserves a
distinct slot.
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


def reserve(tat_us: int | None, now_us: int, rate: Rate) -> Reservation:
    base = max(tat_us or 0, now_us)
    new_tat = base + rate.period_us
    allowed_at = new_tat - rate.burst * rate.period_us
    return Reservation(new_tat_us=new_tat, wait_us=max(0, allowed_at - now_us))
