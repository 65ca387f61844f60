"""What a bot sees of one customer message and what it decides, independent of the bot behind it.

The conversation workflow carries `session` between turns (it is the provider's only memory), so it
must stay JSON-serialisable and small: it travels in the Step Functions state (256 KiB cap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Actions
REPLY = "reply"
ESCALATE = "escalate"
RESOLVED = "resolved"
ACTIONS = (REPLY, ESCALATE, RESOLVED)

# Why a chat goes to a person
CUSTOMER_ASKED = "customer_asked"
LOW_CONFIDENCE = "low_confidence"
HUMAN_ONLY_INTENT = "human_only_intent"
TOO_MANY_FAILURES = "too_many_failures"
ESCALATION_REASONS = (CUSTOMER_ASKED, LOW_CONFIDENCE, HUMAN_ONLY_INTENT, TOO_MANY_FAILURES)

# Meta's limits for reply buttons (interactive "button" messages).
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
TEXT_MAX = 4096

# A quick-reply id any bot may offer: tapping it is the customer asking for a person.
PERSON_BUTTON_ID = "talk_to_person"


@dataclass(frozen=True)
class BotTurn:
    """One customer message for the bot."""

    phone_number_id: str
    customer_id: str  # the customer's opaque id (its chat id): stable whatever number it writes from
    text: str | None  # text, caption or button title; None for media without a caption
    message_type: str  # Meta's type: text, interactive, button, image, ...
    reply_id: str | None  # id of the tapped reply button / list row, if any
    failures: int  # consecutive turns the bot did not understand so far
    session: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BotReply:
    text: str
    buttons: tuple[tuple[str, str], ...] = ()  # (id, title) quick replies

    def __post_init__(self) -> None:
        # Checked here so a reply Meta would refuse never reaches the outbound queue.
        if not self.text or len(self.text) > TEXT_MAX:
            raise ValueError(f"a bot reply needs 1..{TEXT_MAX} characters")
        if len(self.buttons) > BUTTONS_MAX:
            raise ValueError(f"at most {BUTTONS_MAX} reply buttons")
        for button_id, title in self.buttons:
            if not button_id or not title or len(title) > BUTTON_TITLE_MAX:
                raise ValueError(f"a button needs an id and a title of 1..{BUTTON_TITLE_MAX} characters")
        if len({button_id for button_id, _ in self.buttons}) != len(self.buttons):
            raise ValueError("button ids must be unique within a reply")


@dataclass(frozen=True)
class BotDecision:
    action: str  # REPLY | ESCALATE | RESOLVED
    replies: tuple[BotReply, ...]
    intent: str | None
    confidence: float  # 0..1
    escalation_reason: str | None  # one of ESCALATION_REASONS when action is ESCALATE
    understood: bool  # False when the bot fell back (counts towards failures)
    session: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown bot action {self.action!r}")
        if (self.action == ESCALATE) != (self.escalation_reason is not None):
            raise ValueError("an escalation, and only an escalation, carries a reason")
        if self.escalation_reason is not None and self.escalation_reason not in ESCALATION_REASONS:
            raise ValueError(f"unknown escalation reason {self.escalation_reason!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError("confidence is between 0 and 1")


class BotProvider(Protocol):
    def turn(self, turn: BotTurn) -> BotDecision: ...


class BotUnavailable(Exception):
    """The bot service could not answer (throttled, down, misconfigured).

    Raised instead of answering with a guess so the workflow can retry the transient cases and
    otherwise hand the chat to a person. The message carries the provider and AWS error code only,
    never the customer's text.
    """

    def __init__(self, provider: str, code: str, retryable: bool):
        super().__init__(f"{provider} bot unavailable: {code}")
        self.provider = provider
        self.code = code
        self.retryable = retryable
