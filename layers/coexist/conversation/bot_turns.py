"""The bot's part of a conversation turn: consent keywords, the configured bot, escalation rules
(coexist.bots), applied to every customer message that waited for the bot, oldest first."""

from __future__ import annotations

import time
from typing import Callable

from coexist.bots.config import OPT_OUT, load_rules
from coexist.bots.consent import ConsentKeyword
from coexist.bots.respond import respond
from coexist.bots.model import ESCALATE, RESOLVED, BotReply, BotTurn, BotUnavailable
from coexist.conversation.steps import BotOutcome
from coexist.domain import consent, reminder
from coexist.domain.chat import Chat
from coexist.domain.replies import reply_id
from coexist.events.models import iso
from coexist.events.publisher import NoBus


def reply_request(reply: BotReply) -> dict:
    """A bot reply as a send request: quick replies become reply buttons."""
    if reply.buttons:
        return {"type": "interactive", "body": reply.text, "buttons": [{"id": i, "title": t} for i, t in reply.buttons]}
    return {"type": "text", "text": reply.text}


class BotTurns:
    def __init__(self, contacts, provider_for_number: Callable[[str], object], clock=time.time, events=None):
        self.contacts = contacts
        self.events = events or NoBus()
        self.provider_for_number = provider_for_number
        self.clock = clock

    def run(self, chat: Chat, messages: list[dict]) -> tuple[BotOutcome, list[dict]]:
        rules = load_rules()
        provider = self.provider_for_number(chat.phone_number_id)
        failures = chat.bot_failures
        session = dict(chat.bot_session)
        replies: list[dict] = []
        intent = chat.bot_intent
        for message in sorted(messages, key=lambda m: (m.get("timestamp") or 0, m["id"])):
            # A message the chat carried (store.chats.WaitingMessage) names its reply; one read, its content.
            tapped = message.get("reply") or reply_id(message.get("type") or "", message.get("content"))
            turn = BotTurn(chat.phone_number_id, chat.chat_id, message.get("text"), message.get("type") or "unknown",
                           reminder.intent_of(tapped) or tapped, failures, session)
            try:
                outcome = respond(provider, turn, rules)
            except BotUnavailable:
                # A bot that cannot answer hands the customer to a person rather than leave them waiting.
                replies.append(reply_request(BotReply(rules.escalation_message)))
                return BotOutcome("escalate", intent, failures, session, "bot_unavailable"), replies
            decision = outcome.decision
            if outcome.consent:
                self.contacts.consent.record(self._keyword_change(chat, message, outcome.consent))
            failures = 0 if decision.understood else failures + 1
            session = dict(decision.session or {})
            intent = decision.intent or intent
            replies += [reply_request(r) for r in decision.replies]
            if decision.action == ESCALATE:
                return BotOutcome("escalate", intent, failures, session, decision.escalation_reason), replies
            if decision.action == RESOLVED:
                return BotOutcome("resolved", intent, failures, session), replies
        return BotOutcome("reply", intent, failures, session), replies

    def _keyword_change(self, chat: Chat, message: dict, keyword: ConsentKeyword) -> consent.ConsentChange:
        """The customer's keyword as a consent change, timed when they sent it; its evidence is the
        message's id and a hash of its text (the text itself stays in the message, nowhere else)."""
        state = consent.State.WITHDRAWN if keyword.change == OPT_OUT else consent.State.GRANTED
        evidence = consent.KeywordEvidence(message["id"], consent.text_sha256(message.get("text")), keyword.language)
        at = int(message.get("timestamp") or self.clock())
        return consent.change(chat.phone_number_id, chat.chat_id, keyword.purpose, state, at, evidence)
