"""One bot turn as the workflow runs it: consent first, then a request for a person, then the bot,
then the escalation rules over whatever the bot decided."""

from __future__ import annotations

from dataclasses import dataclass

from coexist.bots.config import BotRules
from coexist.bots.consent import ConsentKeyword, consent_keyword
from coexist.bots.escalation import asks_for_person, decide, escalation
from coexist.bots.model import CUSTOMER_ASKED, REPLY, BotDecision, BotProvider, BotReply, BotTurn


@dataclass(frozen=True)
class TurnOutcome:
    decision: BotDecision
    consent: ConsentKeyword | None = None  # a consent keyword: record it in the consent ledger


def respond(provider: BotProvider, turn: BotTurn, rules: BotRules) -> TurnOutcome:
    """Raises `BotUnavailable` when the provider's service fails: the workflow retries or hands over."""
    keyword = consent_keyword(turn.text, rules)
    if keyword is not None:
        # The confirmation, and nothing that would close the chat (and so send a survey to someone
        # who just said STOP).
        confirmation = BotDecision(REPLY, (BotReply(keyword.confirmation),), keyword.change, 1.0, None, True, turn.session)
        return TurnOutcome(confirmation, keyword)
    if asks_for_person(turn, rules):
        # No need to spend a bot call (or a model's tokens) on a customer who asked for a person.
        return TurnOutcome(escalation(turn, rules, CUSTOMER_ASKED))
    return TurnOutcome(decide(turn, provider.turn(turn), rules))
