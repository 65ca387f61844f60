"""One-time reminders (an appointment, a lab result ready): what a reminder is and how the
customer's button reply names it.

A reminder is sent as an approved template whose quick-reply buttons carry payloads naming the
reminder and the answer (`reminder:<id>:confirm`); Meta echoes the payload in the customer's
`button` (or `interactive`) reply, which is how the answer finds its reminder.
"""

from __future__ import annotations

import re
import secrets
import string
from enum import StrEnum

PAYLOAD_PREFIX = "reminder"
PURPOSE = "reminders"  # the consent purpose a reminder's send names


class ReminderStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its time
    SENT = "sent"  # handed to the outbound path (the message's own status tells the rest)
    CANCELLED = "cancelled"  # cancelled before its time: the schedule is gone
    FAILED = "failed"  # the send was refused (policy, e.g. an offboarded number)


class Button(StrEnum):
    """What a quick-reply button of the reminder's template means."""

    CONFIRM = "confirm"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"


# The answer recorded on the reminder for each button.
ANSWERS = {Button.CONFIRM: "confirmed", Button.CANCEL: "cancelled", Button.RESCHEDULE: "reschedule_requested"}

_ID = re.compile(r"^r[a-z]{24}$")
_PAYLOAD = re.compile(rf"^{PAYLOAD_PREFIX}:(r[a-z]{{24}}):([a-z]+)$")


def new_reminder_id() -> str:
    return "r" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(24))


def is_reminder_id(value: str) -> bool:
    return bool(_ID.match(value or ""))


def button_payload(reminder_id: str, button: Button) -> str:
    return f"{PAYLOAD_PREFIX}:{reminder_id}:{button.value}"


def _tapped(reply_id: str | None) -> tuple[str, Button] | None:
    """(reminder id, button) when a reply's payload names a reminder's button, else None."""
    match = _PAYLOAD.match(reply_id or "")
    if not match or match.group(2) not in {b.value for b in Button}:
        return None
    return match.group(1), Button(match.group(2))


def answer_of(reply_id: str | None) -> tuple[str, str] | None:
    """(reminder id, answer) when a reply's payload names a reminder's button, else None."""
    tapped = _tapped(reply_id)
    return (tapped[0], ANSWERS[tapped[1]]) if tapped else None


def intent_of(reply_id: str | None) -> str | None:
    """The bot intent a reminder's button stands for (`reminder_reschedule`, …), or None when the
    reply is not a reminder's: the payload names the reminder, the bot needs only what was meant."""
    tapped = _tapped(reply_id)
    return f"reminder_{tapped[1].value}" if tapped else None
