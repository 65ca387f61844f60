"""When a chat goes from the bot to a person, the same for every provider.

Applied around each provider's raw decision, so a bot can never talk its way past the customer
asking for a person, a human-only topic, or a run of turns it did not understand.
"""

from __future__ import annotations

from coexist.bots.config import BotRules
from coexist.bots.model import (
    CUSTOMER_ASKED,
    ESCALATE,
    HUMAN_ONLY_INTENT,
    LOW_CONFIDENCE,
    PERSON_BUTTON_ID,
    TOO_MANY_FAILURES,
    BotDecision,
    BotReply,
    BotTurn,
)
from coexist.bots.text import fold


def asks_for_person(turn: BotTurn, rules: BotRules) -> bool:
    if turn.reply_id == PERSON_BUTTON_ID:
        return True
    return bool(turn.text) and rules.agent_pattern.search(fold(turn.text)) is not None


def escalation(turn: BotTurn, rules: BotRules, reason: str, raw: BotDecision | None = None) -> BotDecision:
    """Hand over, telling the customer so. A provider that chose to escalate may say something first
    (a clinic's emergency advice); when the hand-over is imposed from here, what the bot was about to
    say is dropped, since it may be a question the person will ask again differently."""
    said = tuple(BotReply(r.text) for r in raw.replies) if raw is not None and raw.action == ESCALATE else ()
    return BotDecision(
        action=ESCALATE,
        replies=said + (BotReply(rules.escalation_message),),
        intent=raw.intent if raw else None,
        confidence=raw.confidence if raw else 1.0,
        escalation_reason=reason,
        # Asking for a person is understood; a turn handed over for any other reason keeps its verdict.
        understood=True if reason == CUSTOMER_ASKED else (raw.understood if raw else True),
        session=raw.session if raw else turn.session,
    )


def decide(turn: BotTurn, raw: BotDecision, rules: BotRules) -> BotDecision:
    if asks_for_person(turn, rules):
        return escalation(turn, rules, CUSTOMER_ASKED, raw)
    if raw.action == ESCALATE:
        return escalation(turn, rules, raw.escalation_reason or HUMAN_ONLY_INTENT, raw)
    if raw.intent is not None and raw.intent in rules.human_only_intents:
        return escalation(turn, rules, HUMAN_ONLY_INTENT, raw)
    if not raw.understood:
        # A fallback is judged by the failure budget, not the confidence threshold: otherwise the
        # first unclear message would hand over and max_failures would mean nothing.
        if turn.failures + 1 >= rules.max_failures:
            return escalation(turn, rules, TOO_MANY_FAILURES, raw)
        return raw
    if raw.confidence < rules.confidence_threshold:
        return escalation(turn, rules, LOW_CONFIDENCE, raw)
    return raw
