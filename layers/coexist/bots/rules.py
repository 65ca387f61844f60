"""The default bot: intents from keywords and patterns in the rules file. Offline and predictable.

A tapped button names its intent (certain); otherwise intents are tried in file order and the first
whose pattern matches the folded text wins. Nothing matched is a fallback, which counts towards the
failures that hand the chat to a person.
"""

from __future__ import annotations

import re
from functools import cached_property

from coexist.bots.config import BotRules, Intent
from coexist.bots.model import ESCALATE, HUMAN_ONLY_INTENT, REPLY, RESOLVED, BotDecision, BotReply, BotTurn
from coexist.bots.text import fold

BUTTON_CONFIDENCE = 1.0
PATTERN_CONFIDENCE = 0.9


class RulesBot:
    def __init__(self, rules: BotRules):
        self.rules = rules

    @cached_property
    def _patterns(self) -> list[tuple[Intent, list[re.Pattern]]]:
        return [(i, [re.compile(p, re.IGNORECASE) for p in i.patterns]) for i in self.rules.intents]

    def _match(self, turn: BotTurn) -> tuple[Intent | None, float]:
        if turn.reply_id and (intent := self.rules.intent(turn.reply_id)):
            return intent, BUTTON_CONFIDENCE
        if turn.text:
            text = fold(turn.text)
            for intent, patterns in self._patterns:
                if any(p.search(text) for p in patterns):
                    return intent, PATTERN_CONFIDENCE
        return None, 0.0

    def turn(self, turn: BotTurn) -> BotDecision:
        intent, confidence = self._match(turn)
        greeting = (self.rules.greeting.bot_reply(),) if self.rules.greeting and not turn.session.get("greeted") else ()
        session = {**turn.session, "greeted": True, "last_intent": intent.name if intent else None}
        if intent is None:
            return BotDecision(REPLY, greeting + (self.rules.fallback.bot_reply(),), None, 0.0, None, False, session)
        answer: tuple[BotReply, ...] = (intent.answer.bot_reply(),) if intent.answer else ()
        if intent.name in self.rules.human_only_intents:
            # The bot escalates itself so the answer (e.g. emergency advice) is still sent.
            return BotDecision(ESCALATE, answer, intent.name, confidence, HUMAN_ONLY_INTENT, True, session)
        action = RESOLVED if intent.resolves else REPLY
        return BotDecision(action, greeting + answer, intent.name, confidence, None, True, session)
