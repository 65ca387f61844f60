"""The escalation rules every provider's decision passes through."""

from __future__ import annotations

import pytest

from coexist.bots import ESCALATE, REPLY, RESOLVED, BotDecision, BotReply, BotTurn
from coexist.bots.config import parse_rules
from coexist.bots.escalation import asks_for_person, decide
from tests.unit.test_bots_config import minimal_rules

RULES = parse_rules(minimal_rules(confidence_threshold=0.5, max_failures=3, human_only_intents=["BookAppointment"]))
ANSWER = BotReply("We open at 8.", (("hours", "Hours"),))


def turn(text: str | None = "hello", failures: int = 0, reply_id: str | None = None) -> BotTurn:
    return BotTurn("pnid", "waid", text, "text", reply_id, failures, {"k": "v"})


def raw(action=REPLY, intent="hours", confidence=0.9, understood=True, reason=None, replies=(ANSWER,)) -> BotDecision:
    return BotDecision(action, replies, intent, confidence, reason, understood, {"bot": "state"})


@pytest.mark.parametrize(
    "text, failures, decision, expected_action, expected_reason",
    [
        ("when do you open", 0, raw(), REPLY, None),
        ("when do you open", 0, raw(action=RESOLVED), RESOLVED, None),
        ("I want an AGENT now", 0, raw(), ESCALATE, "customer_asked"),
        ("I want an agent", 0, raw(action=RESOLVED), ESCALATE, "customer_asked"),
        ("let me talk   to someone", 0, raw(), ESCALATE, "customer_asked"),
        ("hablar con un humano", 0, raw(), ESCALATE, "customer_asked"),
        ("is this a travel agency?", 0, raw(), REPLY, None),  # word boundary: agency is not agent
        ("humanity", 0, raw(), REPLY, None),
        ("book me in", 0, raw(intent="BookAppointment"), ESCALATE, "human_only_intent"),
        ("hmm", 0, raw(confidence=0.49), ESCALATE, "low_confidence"),
        ("hmm", 0, raw(confidence=0.5), REPLY, None),  # at the threshold is confident enough
        ("??", 0, raw(intent=None, confidence=0.0, understood=False), REPLY, None),  # a first fallback is not low confidence
        ("??", 1, raw(intent=None, confidence=0.0, understood=False), REPLY, None),
        ("??", 2, raw(intent=None, confidence=0.0, understood=False), ESCALATE, "too_many_failures"),
        ("ok", 2, raw(), REPLY, None),  # understanding this turn breaks the run of failures
        ("x", 0, raw(action=ESCALATE, reason="human_only_intent"), ESCALATE, "human_only_intent"),
        (None, 5, raw(intent=None, confidence=0.0, understood=False), ESCALATE, "too_many_failures"),
    ],
)
def test_escalation_table(text, failures, decision, expected_action, expected_reason):
    result = decide(turn(text, failures), decision, RULES)
    assert (result.action, result.escalation_reason) == (expected_action, expected_reason)
    if expected_action == ESCALATE:
        assert result.replies[-1] == BotReply(RULES.escalation_message)
    else:
        assert result is decision


def test_an_imposed_escalation_drops_what_the_bot_was_about_to_say():
    result = decide(turn("hmm"), raw(confidence=0.1), RULES)
    assert result.replies == (BotReply(RULES.escalation_message),)
    assert (result.intent, result.confidence, result.session) == ("hours", 0.1, {"bot": "state"})


def test_a_bot_that_escalates_itself_says_its_part_first_without_buttons():
    result = decide(turn("x"), raw(action=ESCALATE, reason="human_only_intent"), RULES)
    assert result.replies == (BotReply("We open at 8."), BotReply(RULES.escalation_message))


def test_too_many_failures_keeps_the_turn_not_understood_but_asking_is_understood():
    assert decide(turn("??", 2), raw(intent=None, confidence=0.0, understood=False), RULES).understood is False
    assert decide(turn("agent"), raw(intent=None, confidence=0.0, understood=False), RULES).understood is True


def test_the_person_button_is_asking_for_a_person():
    assert asks_for_person(turn("Talk to a person", reply_id="talk_to_person"), RULES)
    assert not asks_for_person(turn(None), RULES)
