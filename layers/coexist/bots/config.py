"""The bot rules file: intents, escalation thresholds and consent keywords, validated on load.

One file serves every provider: the rules bot reads its intents from it, and the escalation and
consent layers read their thresholds and words from it whichever bot runs. The default ships with
the layer as package data (`rules.json` beside this module); `COEXIST_BOT_RULES` points at another.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from coexist.bots.model import BUTTON_TITLE_MAX, BUTTONS_MAX, PERSON_BUTTON_ID, TEXT_MAX, BotReply
from coexist.bots.text import fold, keyword

RULES_ENV = "COEXIST_BOT_RULES"
DEFAULT_RULES = Path(__file__).with_name("rules.json")

OPT_OUT = "opt_out"
OPT_IN = "opt_in"


class _Strict(BaseModel):
    # A misspelt key in a hand-edited file must fail loudly, not silently do nothing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Button(_Strict):
    id: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=BUTTON_TITLE_MAX)


class Reply(_Strict):
    text: str = Field(min_length=1, max_length=TEXT_MAX)
    buttons: list[Button] = Field(default_factory=list, max_length=BUTTONS_MAX)

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value

    @field_validator("buttons")
    @classmethod
    def _unique_ids(cls, buttons: list[Button]) -> list[Button]:
        if len({b.id for b in buttons}) != len(buttons):
            raise ValueError("button ids must be unique within a reply")
        return buttons

    def bot_reply(self) -> BotReply:
        return BotReply(self.text, tuple((b.id, b.title) for b in self.buttons))


IntentName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Intent(_Strict):
    name: IntentName
    patterns: list[str] = Field(min_length=1)
    answer: Reply | None = None
    resolves: bool = False  # answering it ends the conversation ("thanks, bye")

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"pattern {pattern!r} does not compile: {error}") from None
        return patterns


class Consent(_Strict):
    # The purpose the keywords withdraw or grant (a purpose of coexist.domain.consent).
    purpose: str = Field(default="marketing", pattern=r"^[a-z][a-z0-9_]{0,31}$")
    opt_out: dict[str, list[str]]  # language -> whole-message keywords
    opt_in: dict[str, list[str]]
    # One text, or one per language of the keyword ("en" is the fallback).
    opt_out_confirmation: str | dict[str, str]
    opt_in_confirmation: str | dict[str, str]

    @model_validator(mode="after")
    def _disjoint(self) -> "Consent":
        out_words = {keyword(w) for words in self.opt_out.values() for w in words}
        in_words = {keyword(w) for words in self.opt_in.values() for w in words}
        if "" in out_words or "" in in_words:
            raise ValueError("a consent keyword needs at least one letter or digit")
        if both := out_words & in_words:
            raise ValueError(f"keywords both opt out and opt in: {sorted(both)}")
        for name in ("opt_out_confirmation", "opt_in_confirmation"):
            value = getattr(self, name)
            if isinstance(value, dict) and "en" not in value:
                raise ValueError(f"{name} per language needs an 'en' fallback")
        return self


class BotRules(_Strict):
    description: str = ""
    version: str = Field(min_length=1)
    confidence_threshold: float = Field(ge=0.0, le=1.0)
    max_failures: int = Field(ge=1)
    agent_words: list[str] = Field(min_length=1)
    # Intent names (of any provider: rules, Lex or the model's labels) that only a person handles.
    human_only_intents: list[str] = Field(default_factory=list)
    consent: Consent
    escalation_message: str = Field(min_length=1, max_length=TEXT_MAX)
    fallback: Reply
    greeting: Reply | None = None  # sent before the first answer of a conversation
    intents: list[Intent] = Field(default_factory=list)

    _agent_pattern: re.Pattern = PrivateAttr()
    _consent_words: dict[str, tuple[str, str]] = PrivateAttr()

    @model_validator(mode="after")
    def _consistent(self) -> "BotRules":
        names = [i.name for i in self.intents]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"duplicate intents: {duplicates}")
        for intent in self.intents:
            if intent.answer is None and intent.name not in self.human_only_intents:
                raise ValueError(f"intent {intent.name!r} needs an answer (only human-only intents may omit it)")
        # A button's id is the intent it triggers, so a tap is understood with certainty.
        targets = set(names) | {PERSON_BUTTON_ID}
        replies = [self.fallback, *([self.greeting] if self.greeting else []), *(i.answer for i in self.intents if i.answer)]
        for button in (b for reply in replies for b in reply.buttons):
            if button.id not in targets:
                raise ValueError(f"button {button.id!r} names no intent (nor {PERSON_BUTTON_ID!r})")
        if any(not fold(w) for w in self.agent_words):
            raise ValueError("agent words must not be blank")
        return self

    def model_post_init(self, __context: Any) -> None:
        # Words and phrases, matched whole (word boundaries) on folded text: "agent" never fires
        # on "agency", and a phrase tolerates any spacing.
        alternatives = sorted((r"\s+".join(map(re.escape, fold(w).split())) for w in self.agent_words), key=len, reverse=True)
        self._agent_pattern = re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")
        words: dict[str, tuple[str, str]] = {}
        for change, by_language in ((OPT_OUT, self.consent.opt_out), (OPT_IN, self.consent.opt_in)):
            for language, keywords in by_language.items():
                for word in keywords:
                    words.setdefault(keyword(word), (change, language))
        self._consent_words = words

    @property
    def agent_pattern(self) -> re.Pattern:
        return self._agent_pattern

    @property
    def consent_words(self) -> dict[str, tuple[str, str]]:
        """Normalised keyword -> (OPT_OUT | OPT_IN, language)."""
        return self._consent_words

    def intent(self, name: str) -> Intent | None:
        return next((i for i in self.intents if i.name == name), None)


def parse_rules(document: dict) -> BotRules:
    return BotRules.model_validate(document)


def load_rules(path: str | os.PathLike | None = None) -> BotRules:
    """The rules at `path`, else at `$COEXIST_BOT_RULES`, else the defaults shipped with the layer."""
    chosen = Path(path or os.environ.get(RULES_ENV) or DEFAULT_RULES).resolve()
    if not chosen.is_file():
        # The likeliest cause in Lambda: a layer bundle built from the library's .py files only.
        raise FileNotFoundError(f"bot rules not found at {chosen}; set {RULES_ENV} or ship bots/rules.json in the layer")
    return _load(chosen, chosen.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _load(path: Path, _mtime_ns: int) -> BotRules:
    # Cached per file version: a warm Lambda parses once, an edited file is read again.
    return parse_rules(json.loads(path.read_text(encoding="utf-8")))
