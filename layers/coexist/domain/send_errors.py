"""What Meta's answer to a send means for the message, by error code (never by message text)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Action(str, Enum):
    BACK_OFF = "back_off"  # throughput: wait with jitter and try again
    RETRY = "retry"  # transient: retry, then the DLQ with the reason
    FAIL = "fail"  # final for this message: failed with Meta's code and text
    STOP_NUMBER = "stop_number"  # the number cannot send at all: open its circuit


RETRIES_EXHAUSTED = "retries_exhausted"  # failed by us after retrying, not by Meta: a redrive may retry it
# The call to Meta was started and its answer never recorded (the attempt died in between): Meta may
# or may not have the message, and the Cloud API has no idempotency key, so it is not sent again.
OUTCOME_UNKNOWN = "outcome_unknown"
# A campaign message still waiting to be sent when its campaign was cancelled: never sent.
CAMPAIGN_CANCELLED = "campaign_cancelled"


def retries_exhausted(reason: str) -> str:
    """The failure reason of a message parked in the DLQ, with what kept failing."""
    return f"{RETRIES_EXHAUSTED}: {reason}"


@dataclass(frozen=True)
class Verdict:
    action: Action
    reason: str  # our machine-readable code for the failure


THROUGHPUT = {130429: "rate_limited", 131056: "pair_rate_limited", 131057: "throughput_upgrade"}
TRANSIENT = {131000: "meta_unknown_error", 1: "meta_api_unknown", 2: "meta_api_service", 131016: "meta_service_unavailable", 133004: "meta_server_unavailable"}
NUMBER_STOPPERS = {190: "access_token_invalid", 368: "number_temporarily_blocked", 131031: "account_locked", 10: "permission_denied", 200: "permission_denied"}
FINAL = {
    131047: "window_closed",
    131026: "undeliverable",
    131049: "ecosystem_limit",
    131050: "opted_out",
    131051: "unsupported_type",
    131030: "recipient_not_allowed",
    # Meta's "Business-scoped user IDs" page: this message (e.g. a one-tap or zero-tap
    # authentication template) cannot go to a BSUID; it needs the customer's phone number.
    131062: "bsuid_recipient_unsupported",
    132000: "template_parameters",
    132001: "template_missing",
    132005: "template_text_too_long",
    132007: "template_policy",
    132012: "template_parameter_format",
    131008: "missing_parameter",
    131009: "invalid_parameter",
    100: "invalid_parameter",
}


def classify(code: int | None, http_status: int | None) -> Verdict:
    if code in THROUGHPUT:
        return Verdict(Action.BACK_OFF, THROUGHPUT[code])
    if code in NUMBER_STOPPERS:
        return Verdict(Action.STOP_NUMBER, NUMBER_STOPPERS[code])
    if code in TRANSIENT:
        return Verdict(Action.RETRY, TRANSIENT[code])
    if code in FINAL:
        return Verdict(Action.FAIL, FINAL[code])
    if http_status is None or http_status >= 500 or http_status == 429:
        return Verdict(Action.RETRY, "meta_unavailable" if http_status else "network_error")
    return Verdict(Action.FAIL, f"meta_error_{code}" if code else f"http_{http_status}")


def records_marketing_opt_out(code: int | None) -> bool:
    """131050: the customer stopped marketing messages; the consent ledger must say so."""
    return code == 131050
