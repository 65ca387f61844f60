"""The customer-service window (docs/ARCHITECTURE.md rule 1).

Only a customer's own message opens or extends it; echoes from the Business App and imported
history never do. It is derived from the time of the customer's latest message, so an old message
delivered late can never shorten it.
"""

from __future__ import annotations

CUSTOMER_SERVICE_WINDOW_S = 24 * 3600
# A customer who arrived from a click-to-WhatsApp ad or Page call-to-action, and got a reply within
# 24 h, may be messaged free of charge for 72 h from that reply (pricing only: free-form messages
# still need the customer-service window).
FREE_ENTRY_POINT_WINDOW_S = 72 * 3600
ENTRY_POINT_REPLY_S = 24 * 3600

# Inbound message types that are not the customer writing to the business.
NOT_CUSTOMER_INITIATED = frozenset({"system"})


def window_expires_at(last_customer_message_at: int | None) -> int | None:
    if last_customer_message_at is None:
        return None
    return last_customer_message_at + CUSTOMER_SERVICE_WINDOW_S


def is_open(last_customer_message_at: int | None, now: int) -> bool:
    expires = window_expires_at(last_customer_message_at)
    return expires is not None and now < expires


def warned_for_window(expires_at: int, warned_at: int | None, lead_s: int) -> bool:
    """Was the agent already told about the window ending at `expires_at`? A warning given for an
    earlier window (the customer has written since) does not count."""
    return warned_at is not None and warned_at >= expires_at - lead_s


def next_warning_at(last_customer_message_at: int | None, warned_at: int | None, lead_s: int) -> int | None:
    """When the agent should hear that the window closes `lead_s` from then; None: nothing to tell."""
    expires = window_expires_at(last_customer_message_at)
    if expires is None or warned_for_window(expires, warned_at, lead_s):
        return None
    return expires - lead_s


def warning_due(last_customer_message_at: int | None, warned_at: int | None, now: int, lead_s: int) -> bool:
    """Is it time (and still worth it) to tell the agent the window is about to close? Once per window."""
    due = next_warning_at(last_customer_message_at, warned_at, lead_s)
    return due is not None and due <= now < due + lead_s


def opens_window(message_type: str) -> bool:
    return message_type not in NOT_CUSTOMER_INITIATED


def answers_entry_point(referral_at: int | None, replied_at: int) -> bool:
    """Does a business reply at `replied_at` open the free entry point of an ad referral?"""
    return referral_at is not None and referral_at <= replied_at <= referral_at + ENTRY_POINT_REPLY_S


def free_entry_point_expires_at(referral_at: int | None, replied_at: int | None) -> int | None:
    """End of the 72 h free entry point, if the referral was answered in time."""
    if replied_at is None or not answers_entry_point(referral_at, replied_at):
        return None
    return replied_at + FREE_ENTRY_POINT_WINDOW_S
