"""Opt-out and opt-in keywords, checked before any bot sees the message.

Keywords are configured per language in the rules file (English, Thai, …) and the confirmation is
sent in the keyword's language. Only a message that *is* a keyword counts (trimmed; case, accents
and punctuation ignored): "Stop!", "ARRET" and "หยุด" opt out, "please stop sending me ads" does
not. A keyword inside a sentence is as often about something else ("stop, I meant Tuesday") and a
false opt-out silently cuts a patient off from reminders; a sentence is read by the bot or a person
instead. Meta's own opt-out guidance for marketing messages is keyword based, and its marketing
templates' "Stop promotions" button arrives as exactly that text.
"""

from __future__ import annotations

from dataclasses import dataclass

from coexist.bots.config import OPT_IN, OPT_OUT, BotRules
from coexist.bots.text import keyword

__all__ = ["OPT_IN", "OPT_OUT", "ConsentKeyword", "consent_change", "consent_keyword"]


@dataclass(frozen=True)
class ConsentKeyword:
    change: str  # OPT_OUT | OPT_IN
    language: str  # the language the keyword is configured under
    confirmation: str  # what to send back, in that language when configured
    purpose: str  # what the customer stopped or started (the rules' consent purpose)


def consent_keyword(text: str | None, rules: BotRules) -> ConsentKeyword | None:
    if not text:
        return None
    found = rules.consent_words.get(keyword(text))
    if found is None:
        return None
    change, language = found
    texts = rules.consent.opt_out_confirmation if change == OPT_OUT else rules.consent.opt_in_confirmation
    confirmation = texts if isinstance(texts, str) else texts.get(language, texts["en"])
    return ConsentKeyword(change, language, confirmation, rules.consent.purpose)


def consent_change(text: str | None, rules: BotRules) -> str | None:
    """"opt_out", "opt_in" or None for a customer's message."""
    found = consent_keyword(text, rules)
    return found.change if found else None
