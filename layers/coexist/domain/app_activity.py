"""The Business App's 14-day rule: Meta disconnects a coexistence number whose WhatsApp Business
App has not been used for about 14 days. The operators are warned as the day approaches.

Coexist sees the app being used when it echoes a message sent from the phone (and assumes it was
used when the number was connected); an app opened without sending anything leaves no trace, so a
warning means "no sign of the app for N days", which is what an operator can act on.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_S = 24 * 3600
DISCONNECTED_AFTER_DAYS = 14
WARN_AT_DAYS = (10, 12, 13)


@dataclass(frozen=True)
class Quiet:
    """A number's app quiet spell, as of `now`."""

    since: int  # the last sign of the app being used
    days: int  # whole days since then
    warn_at: int | None  # the warning due now (10, 12 or 13 days), or None
    disconnect_expected_at: int
    warned_days: int | None = None  # the warning already given for this spell


def quiet_spell(last_sign_at: int, now: int, warned_days: int | None = None) -> Quiet:
    """How long the app has been quiet and which warning is due; `warned_days` is the warning already
    given for this same spell (a newer sign of the app starts a new spell, with no warning given)."""
    days = max(0, now - last_sign_at) // DAY_S
    reached = [d for d in WARN_AT_DAYS if days >= d]
    due = reached[-1] if reached and (warned_days is None or reached[-1] > warned_days) else None
    return Quiet(last_sign_at, days, due, last_sign_at + DISCONNECTED_AFTER_DAYS * DAY_S, warned_days)


def last_sign(last_app_activity_at: int | None, connected_at: int | None, first_seen_at: int | None) -> int | None:
    """The last echo from the phone, else when the number was connected (onboarding uses the app),
    else when this deployment first saw the number."""
    return next((int(t) for t in (last_app_activity_at, connected_at, first_seen_at) if t), None)
