"""What the sender does with each record of an outbound batch: the rules, without AWS.

A batch's records are grouped by customer (their FIFO message group) and each group is worked
through in order. Per record: start it only while the function has time for a whole send; then,
from what delivering it came to (`Outcome`), either go on with the group, hold the rest of the
group (this record and the ones behind it come back together, so no customer's messages overtake
each other), or move this one record to the DLQ (its attempts ran out; the group goes on).

    decision = next_step(attempt(lambda: sender.deliver(Delivery(message_id))))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from coexist.domain.send_errors import OUTCOME_UNKNOWN, retries_exhausted
from coexist.outbound.deadlines import SEND_WORST_CASE_S
from coexist.outbound.sender import CircuitOpened, Defer, Park, Retry, SendReport
from coexist.resources import OUTBOUND_MAX_RECEIVES, SENDER_OUTCOME_UNKNOWN_METRIC

MAX_VISIBILITY_S = 12 * 3600  # the SQS maximum
CRASH_HOLD_S = 5  # a sender error: the group comes back after this long
OUT_OF_TIME_HOLD_S = 1  # the function's time ran out: the group comes back at once


# --- what delivering one record came to ------------------------------------------------------

@dataclass(frozen=True)
class Done:
    """The record needs no more work: `sent`, `failed` (final, with its reason) or `skipped`."""

    outcome: str
    reason: str | None = None


@dataclass(frozen=True)
class Deferred:
    """Not now: a throughput slot not yet due, Meta's backoff, a retry, or an open circuit."""

    seconds: float
    reason: str
    kind: str  # deferred | retried | circuit_opened


@dataclass(frozen=True)
class Parked:
    """Meta kept failing it transiently and its attempts ran out: failed, for the DLQ."""

    reason: str


@dataclass(frozen=True)
class Crashed:
    """Delivering it raised something unexpected (a store outage, a record without a message id)."""

    error: Exception


Outcome = Done | Deferred | Parked | Crashed


# --- what to do next ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GoOn:
    """On to the group's next record."""

    metric: str


@dataclass(frozen=True)
class HoldGroup:
    """This record and the rest of its group come back after `visibility_s`."""

    visibility_s: int
    reason: str
    metric: str | None = None


@dataclass(frozen=True)
class MoveToDlq:
    """This record goes to the DLQ with `reason`; its group goes on."""

    reason: str
    metric: str = "SenderParked"


Decision = GoOn | HoldGroup | MoveToDlq


def visibility_s(seconds: float) -> int:
    """SQS takes whole seconds, at least one (zero would hand the group straight back), at most 12 h."""
    return min(MAX_VISIBILITY_S, max(1, math.ceil(seconds)))


def may_start(remaining_ms: int) -> HoldGroup | None:
    """A send is only started with time for its worst case left: one cut off by the function's
    timeout in the middle of the call to Meta would have an unknown outcome."""
    if remaining_ms < SEND_WORST_CASE_S * 1000:
        return HoldGroup(OUT_OF_TIME_HOLD_S, "function time ran out")
    return None


# Meta's throughput refusals, counted apart from other retries (the operations dashboard shows them):
# 130429 (the number's rate) and 131056 (the pair rate: too many to one customer).
THROTTLE_METRICS = {"rate_limited": "SenderMetaRateLimited130429", "pair_rate_limited": "SenderMetaPairRateLimited131056"}


def throttle_metric(outcome: Outcome) -> str | None:
    """The extra count of a send Meta refused for throughput, if it was one."""
    return THROTTLE_METRICS.get(outcome.reason) if isinstance(outcome, Deferred) else None


def next_step(outcome: Outcome) -> Decision:
    if isinstance(outcome, Done):
        if outcome.reason == OUTCOME_UNKNOWN:
            return GoOn(SENDER_OUTCOME_UNKNOWN_METRIC)  # a person must find out whether the customer got it
        return GoOn(f"Sender{outcome.outcome.title()}")
    if isinstance(outcome, Parked):
        return MoveToDlq(retries_exhausted(outcome.reason))
    if isinstance(outcome, Deferred):
        metric = {"circuit_opened": "SenderCircuitOpened", "retried": "SenderRetried"}.get(outcome.kind, "SenderDeferred")
        return HoldGroup(visibility_s(outcome.seconds), outcome.reason, metric)
    return HoldGroup(CRASH_HOLD_S, "sender error", "SenderCrashed")


def fails_when_held(receive_count: int) -> bool:
    """A record at its last receive goes to the DLQ after this one, whatever held it (its own wait or
    the message ahead of it in its group): its message is failed first, so that it says why."""
    return receive_count >= OUTBOUND_MAX_RECEIVES


def attempt(deliver: Callable[[], SendReport]) -> Outcome:
    """Deliver one record and say what it came to (the sender signals waits by raising)."""
    try:
        report = deliver()
    except Park as parked:
        return Parked(parked.reason)
    except CircuitOpened as opened:
        return Deferred(opened.seconds, opened.reason, "circuit_opened")
    except Retry as retry:
        return Deferred(retry.seconds, retry.reason, "retried")
    except Defer as deferral:
        return Deferred(deferral.seconds, deferral.reason, "deferred")
    except Exception as error:  # noqa: BLE001 - any failure holds the group; the caller logs it
        return Crashed(error)
    return Done(report.outcome, report.reason)
