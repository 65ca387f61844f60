"""Where a number stands in Coexistence, from `account_update` events.

Events arrive out of order and may repeat, so the state is the one implied by the newest event.
Events that say nothing about the connection (volume tiers, violations, …) are only kept.
"""

from __future__ import annotations

UNKNOWN = "unknown"
CONNECTED = "connected"  # the number is onboarded: app and Cloud API in use together
DISCONNECTED = "disconnected"  # the partner (this deployment) was removed, see the reason
OFFBOARDED = "offboarded"  # the Business App companion was offboarded (e.g. device change)
DELETED = "deleted"

STATE_AFTER_EVENT: dict[str, str] = {
    "PARTNER_ADDED": CONNECTED,
    "ACCOUNT_RECONNECTED": CONNECTED,
    "PARTNER_REMOVED": DISCONNECTED,
    "PARTNER_APP_UNINSTALLED": DISCONNECTED,
    "ACCOUNT_OFFBOARDED": OFFBOARDED,
    "ACCOUNT_DELETED": DELETED,
}


def state_after(event: str) -> str | None:
    return STATE_AFTER_EVENT.get(event)


def current_state(number_state: dict | None, account_state: dict | None, coexistence_evidence: bool) -> dict:
    """The newest of the number's own and its account's state; echoes or history imply connected."""
    candidates = [s for s in (number_state, account_state) if s and s.get("state")]
    if candidates:
        return max(candidates, key=lambda s: s.get("event_time") or 0)
    return {"state": CONNECTED if coexistence_evidence else UNKNOWN}
