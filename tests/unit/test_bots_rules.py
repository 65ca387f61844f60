"""The rules bot on the shipped clinic rules: intents, buttons, fallbacks, human-only topics, endings."""

from __future__ import annotations

import pytest

from coexist.bots import ESCALATE, HUMAN_ONLY_INTENT, REPLY, RESOLVED, BotTurn
from coexist.bots.config import load_rules
from coexist.bots.respond import respond
from coexist.bots.rules import BUTTON_CONFIDENCE, PATTERN_CONFIDENCE, RulesBot

RULES = load_rules()
BOT = RulesBot(RULES)
GREETED = {"greeted": True}


def turn(text: str | None = None, reply_id: str | None = None, failures: int = 0, session: dict | None = None, message_type: str = "text") -> BotTurn:
    return BotTurn("106540352242922", "16505551234", text, message_type, reply_id, failures, GREETED if session is None else session)


@pytest.mark.parametrize(
    "text, intent",
    [
        ("What are your opening hours?", "opening_hours"),
        ("are you OPEN on saturday", "opening_hours"),
        ("Where are you? Is there parking", "location"),
        ("I'd like to book an appointment", "book_appointment"),
        ("can I reschedule my appointment to Friday", "change_appointment"),
        ("I need to cancel my appointment", "change_appointment"),
        ("I need a refill of my medication", "prescription_refill"),
        ("Are my blood test results ready?", "test_results"),
        ("Hello!", "hello"),
        ("Thank you, bye", "goodbye"),
        ("Obrigada", "goodbye"),
    ],
)
def test_patterns_find_the_intent(text, intent):
    decision = BOT.turn(turn(text))
    assert (decision.intent, decision.confidence, decision.understood) == (intent, PATTERN_CONFIDENCE, True)


def test_intents_are_tried_in_file_order_so_the_specific_one_wins():
    # "thanks" alone would resolve the chat; the question in the same message comes first.
    assert BOT.turn(turn("thanks, and when do you open tomorrow?")).intent == "opening_hours"
    assert BOT.turn(turn("Hi, I have chest pain")).intent == "emergency"


def test_answer_carries_its_quick_reply_buttons():
    decision = BOT.turn(turn("opening hours please"))
    assert decision.action == REPLY
    assert [reply.buttons for reply in decision.replies] == [(("book_appointment", "Book appointment"), ("location", "Location"))]
    assert decision.replies[0].text.startswith("We are open Monday to Friday")


def test_a_tapped_button_is_its_intent_with_certainty_whatever_the_title_says():
    decision = BOT.turn(turn("Location", reply_id="location", message_type="interactive"))
    assert (decision.intent, decision.confidence) == ("location", BUTTON_CONFIDENCE)
    # An id that names no intent falls back to the text.
    assert BOT.turn(turn("what are your hours", reply_id="unknown-id")).intent == "opening_hours"


def test_the_greeting_goes_before_the_first_answer_only():
    first = BOT.turn(turn("what are your hours", session={}))
    assert [r.text for r in first.replies][0] == RULES.greeting.text
    assert len(first.replies) == 2 and first.session["greeted"] is True
    later = BOT.turn(turn("what are your hours", session=first.session))
    assert len(later.replies) == 1 and later.replies[0].text != RULES.greeting.text


def test_no_match_is_the_fallback_with_the_menu_and_not_understood():
    decision = BOT.turn(turn("asdf qwerty"))
    assert (decision.action, decision.intent, decision.confidence, decision.understood) == (REPLY, None, 0.0, False)
    assert decision.replies == (RULES.fallback.bot_reply(),)
    assert ("talk_to_person", "Talk to a person") in decision.replies[0].buttons


def test_media_without_caption_is_not_understood():
    decision = BOT.turn(turn(None, message_type="image"))
    assert decision.understood is False and decision.replies == (RULES.fallback.bot_reply(),)


def test_session_remembers_the_last_intent_and_keeps_other_keys():
    decision = BOT.turn(turn("where are you", session={"greeted": True, "workflow_note": 1}))
    assert decision.session == {"greeted": True, "workflow_note": 1, "last_intent": "location"}


def test_thanks_resolves_the_conversation():
    decision = BOT.turn(turn("thanks!"))
    assert (decision.action, decision.intent) == (RESOLVED, "goodbye")


def test_a_human_only_intent_escalates_from_the_bot_itself():
    decision = BOT.turn(turn("can I get a prescription refill"))
    assert (decision.action, decision.escalation_reason, decision.intent) == (ESCALATE, HUMAN_ONLY_INTENT, "prescription_refill")


def test_emergency_advice_is_sent_before_the_hand_over():
    decision = respond(BOT, turn("I think it's an emergency, heavy bleeding"), RULES).decision
    assert decision.action == ESCALATE and decision.escalation_reason == HUMAN_ONLY_INTENT
    assert [r.text for r in decision.replies] == [RULES.intent("emergency").answer.text, RULES.escalation_message]


def test_fallbacks_count_up_to_the_hand_over():
    # The workflow counts: a fallback on the first failure replies, the second reaches max_failures.
    first = respond(BOT, turn("asdf", failures=0), RULES).decision
    assert first.action == REPLY and first.understood is False
    second = respond(BOT, turn("qwerty", failures=1), RULES).decision
    assert (second.action, second.escalation_reason) == (ESCALATE, "too_many_failures")
    assert second.replies[-1].text == RULES.escalation_message


def test_asking_for_a_person_escalates_without_asking_the_bot():
    class Unreachable:
        def turn(self, turn):
            raise AssertionError("the bot must not be called")

    decision = respond(Unreachable(), turn("Can I talk to a real person please"), RULES).decision
    assert (decision.action, decision.escalation_reason, decision.understood) == (ESCALATE, "customer_asked", True)
    assert decision.replies[0].text == RULES.escalation_message
    tapped = respond(Unreachable(), turn("Talk to a person", reply_id="talk_to_person", message_type="interactive"), RULES).decision
    assert tapped.escalation_reason == "customer_asked"


def test_a_reminder_s_buttons_are_answered_and_a_reschedule_goes_to_a_person():
    """The conversation turns a reminder's button payload into the intent it stands for."""
    from coexist.domain.reminder import Button, button_payload, intent_of, new_reminder_id

    reminder_id = new_reminder_id()
    confirmed = BOT.turn(turn("Confirm", intent_of(button_payload(reminder_id, Button.CONFIRM))))
    assert (confirmed.action, confirmed.intent) == (RESOLVED, "reminder_confirm")
    assert "confirmed" in confirmed.replies[0].text
    cancelled = BOT.turn(turn("Cancel", intent_of(button_payload(reminder_id, Button.CANCEL))))
    assert (cancelled.action, cancelled.intent) == (RESOLVED, "reminder_cancel")
    reschedule = respond(BOT, turn("Reschedule", intent_of(button_payload(reminder_id, Button.RESCHEDULE))), RULES).decision
    assert (reschedule.action, reschedule.escalation_reason, reschedule.intent) == (ESCALATE, HUMAN_ONLY_INTENT, "reminder_reschedule")
    assert intent_of("book_appointment") is None and intent_of(f"reminder:{reminder_id}:maybe") is None
