"""The rules file is validated on load: a mistake fails at deploy or start, not in a chat."""

from __future__ import annotations

import copy
import json

import pytest
from pydantic import ValidationError

from coexist.bots.config import DEFAULT_RULES, RULES_ENV, load_rules, parse_rules


def minimal_rules(**overrides) -> dict:
    document = {
        "version": "test-1",
        "confidence_threshold": 0.5,
        "max_failures": 2,
        "agent_words": ["agent", "human", "humano", "talk to someone"],
        "human_only_intents": [],
        "consent": {
            "opt_out": {"en": ["STOP"]},
            "opt_in": {"en": ["START"]},
            "opt_out_confirmation": "You are opted out.",
            "opt_in_confirmation": "You are opted in.",
        },
        "escalation_message": "Connecting you with a person.",
        "fallback": "Sorry?",
        "intents": [{"name": "hours", "patterns": ["\\bhours?\\b"], "answer": {"text": "8 to 6", "buttons": [{"id": "hours", "title": "Hours"}]}}],
    }
    document.update(overrides)
    return copy.deepcopy(document)


def _error(document: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_rules(document)
    return str(caught.value)


def test_the_shipped_rules_are_valid_and_versioned():
    rules = load_rules()
    assert rules.version and rules.intents and rules.greeting is not None
    assert {"prescription_refill", "emergency"} <= set(rules.human_only_intents)


def test_a_plain_string_is_a_reply_without_buttons():
    assert parse_rules(minimal_rules()).fallback.bot_reply().buttons == ()


def _intent(**fields) -> dict:
    return {"name": "hours", "patterns": ["hours"], "answer": "8 to 6", **fields}


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"intents": [_intent(answer={"text": "a", "buttons": [{"id": "hours", "title": "x" * 21}]})]}, "20 characters"),
        ({"intents": [_intent(answer={"text": "a", "buttons": [{"id": "hours", "title": str(i)} for i in range(4)]})]}, "at most 3"),
        ({"intents": [_intent(answer={"text": "a", "buttons": [{"id": "hours", "title": "a"}, {"id": "hours", "title": "b"}]})]}, "unique"),
        ({"intents": [_intent(patterns=["(unclosed"])]}, "does not compile"),
        ({"intents": [_intent(), _intent()]}, "duplicate intents"),
        ({"intents": [_intent(answer=None)]}, "needs an answer"),
        ({"intents": [_intent(answer={"text": "a", "buttons": [{"id": "nowhere", "title": "Go"}]})]}, "names no intent"),
        ({"intents": [_intent(name="Opening Hours")]}, "pattern"),
        ({"confidence_threshold": 1.5}, "less than or equal to 1"),
        ({"max_failures": 0}, "greater than or equal to 1"),
        ({"agent_words": []}, "at least 1"),
        ({"version": ""}, "at least 1"),
        ({"fallback": {"text": ""}}, "at least 1"),
        ({"escalation_mesage": "typo"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_rules_are_refused_with_a_useful_message(overrides, fragment):
    assert fragment in _error(minimal_rules(**overrides))


def test_a_keyword_cannot_both_opt_out_and_opt_in():
    consent = minimal_rules()["consent"] | {"opt_in": {"en": ["START"], "fr": ["Stop!"]}}
    assert "both opt out and opt in" in _error(minimal_rules(consent=consent))


def test_per_language_confirmations_need_an_english_fallback():
    consent = minimal_rules()["consent"] | {"opt_out_confirmation": {"es": "Baja"}}
    assert "'en' fallback" in _error(minimal_rules(consent=consent))


def test_a_human_only_intent_may_have_no_answer():
    rules = parse_rules(minimal_rules(human_only_intents=["hours"], intents=[_intent(answer=None)]))
    assert rules.intent("hours").answer is None


def test_the_environment_points_at_another_rules_file(tmp_path, monkeypatch):
    custom = tmp_path / "rules.json"
    custom.write_text(json.dumps(minimal_rules(version="custom-7")))
    monkeypatch.setenv(RULES_ENV, str(custom))
    assert load_rules().version == "custom-7"
    # An edited file is read again (the cache is per file version).
    custom.write_text(json.dumps(minimal_rules(version="custom-8")))
    import os
    os.utime(custom, ns=(1, 1))
    assert load_rules().version == "custom-8"
    monkeypatch.delenv(RULES_ENV)
    assert load_rules().version == json.loads(DEFAULT_RULES.read_text())["version"]


def test_a_missing_rules_file_says_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv(RULES_ENV, str(tmp_path / "absent.json"))
    with pytest.raises(FileNotFoundError, match=RULES_ENV):
        load_rules()
