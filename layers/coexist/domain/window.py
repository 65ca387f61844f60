"""The customer-service window (ARCHITECTURE rule 1).

Only a customer's own message opens or extends it; echoes from the Business App and imported
history never do. It is derived from the time of the customer's latest message, so an old message
delivered late can never shorten it.
"""

from __future__ import annotations

CUSTOMER_SERVICE_WINDOW_S = 24 * 3600
# A customer who arrived from a click-to-WhatsApp ad or Page call-to-action, and got a reply within
# 24 h, may be messaged free of charge for 72 h.
FREE_ENTRY_POINT_WINDOW_S = 72 * 3600

# Inbound message types that are not the customer writing to the business.
NOT_CUSTOMER_INITIATED = frozenset({"system"})


def window_expires_at(last_customer_message_at: int | None) -> int | None:
    if last_customer_message_at is None:
        return None
    return last_customer_message_at + CUSTOMER_SERVICE_WINDOW_S


def is_open(last_customer_message_at: int | None, now: int) -> bool:
    expires = window_expires_at(last_customer_message_at)
    return expires is not None and now < expires


def opens_window(message_type: str) -> bool:
    return message_type not in NOT_CUSTOMER_INITIATED
