"""The sender's per-record rules (coexist.outbound.batch) and the deadlines they rest on, without AWS."""

from __future__ import annotations

import pytest

from coexist import resources
from coexist.outbound import batch, deadlines
from coexist.outbound.batch import Crashed, Deferred, Done, GoOn, HoldGroup, MoveToDlq, Parked
from coexist.outbound.sender import CircuitOpened, Defer, Park, Retry, SendReport


def test_a_send_starts_only_with_time_for_its_worst_case_left():
    worst_ms = deadlines.SEND_WORST_CASE_S * 1000
    assert batch.may_start(int(worst_ms)) is None
    assert batch.may_start(int(worst_ms) - 1) == HoldGroup(1, "function time ran out")
    assert batch.may_start(0) == HoldGroup(1, "function time ran out")


def test_the_worst_case_of_one_send_adds_up_and_the_timeout_exceeds_it():
    assert deadlines.SEND_WORST_CASE_S == (
        2 * deadlines.MAX_INLINE_WAIT_S + deadlines.CONNECT_TIMEOUT_S + deadlines.READ_TIMEOUT_S + deadlines.BOOKKEEPING_S
    )
    assert resources.SENDER_TIMEOUT_S == deadlines.SENDER_TIMEOUT_S > deadlines.SEND_WORST_CASE_S
    assert resources.OUTBOUND_VISIBILITY_TIMEOUT_S >= 6 * resources.SENDER_TIMEOUT_S


@pytest.mark.parametrize(
    "outcome, decision",
    [
        (Done("sent"), GoOn("SenderSent")),
        (Done("failed", "window_closed"), GoOn("SenderFailed")),
        (Done("failed", "outcome_unknown"), GoOn("SenderOutcomeUnknown")),  # counted apart: it pages
        (Done("skipped", "not queued"), GoOn("SenderSkipped")),
        (Parked("meta_unavailable"), MoveToDlq("retries_exhausted: meta_unavailable")),
        (Deferred(0.2, "waiting for number throughput", "deferred"), HoldGroup(1, "waiting for number throughput", "SenderDeferred")),
        (Deferred(7.5, "meta_unavailable", "retried"), HoldGroup(8, "meta_unavailable", "SenderRetried")),
        (Deferred(300, "access_token_invalid", "circuit_opened"), HoldGroup(300, "access_token_invalid", "SenderCircuitOpened")),
        (Deferred(10 * 86400, "waiting for number throughput", "deferred"), HoldGroup(12 * 3600, "waiting for number throughput", "SenderDeferred")),
        (Crashed(RuntimeError("store down")), HoldGroup(5, "sender error", "SenderCrashed")),
    ],
)
def test_what_follows_each_outcome(outcome, decision):
    assert batch.next_step(outcome) == decision


def test_a_record_held_at_its_last_receive_is_failed_first():
    assert not batch.fails_when_held(resources.OUTBOUND_MAX_RECEIVES - 1)
    assert batch.fails_when_held(resources.OUTBOUND_MAX_RECEIVES)


def _raising(error):
    def deliver():
        raise error

    return deliver


def test_attempt_turns_the_senders_signals_into_outcomes():
    assert batch.attempt(lambda: SendReport("sent", wamid="wamid.1")) == Done("sent", None)
    assert batch.attempt(lambda: SendReport("failed", "opted_out")) == Done("failed", "opted_out")
    assert batch.attempt(_raising(Park("meta_unavailable"))) == Parked("meta_unavailable")
    assert batch.attempt(_raising(CircuitOpened(300, "access_token_invalid"))) == Deferred(300, "access_token_invalid", "circuit_opened")
    assert batch.attempt(_raising(Retry(4, "meta_unavailable"))) == Deferred(4, "meta_unavailable", "retried")
    assert batch.attempt(_raising(Defer(2.5, "waiting for recipient pair limit"))) == Deferred(2.5, "waiting for recipient pair limit", "deferred")
    crashed = batch.attempt(_raising(KeyError("message_id")))
    assert isinstance(crashed, Crashed) and isinstance(crashed.error, KeyError)


def test_metas_throughput_refusals_are_counted_apart():
    assert batch.throttle_metric(batch.Deferred(3, "rate_limited", "retried")) == "SenderMetaRateLimited130429"
    assert batch.throttle_metric(batch.Deferred(3, "pair_rate_limited", "retried")) == "SenderMetaPairRateLimited131056"
    assert batch.throttle_metric(batch.Deferred(3, "meta_unavailable", "retried")) is None
    assert batch.throttle_metric(batch.Done("sent", None)) is None
