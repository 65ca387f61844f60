"""The Lex V2 provider against botocore's own RecognizeText model (Stubber validates both shapes)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from coexist.bots import ESCALATE, REPLY, RESOLVED, BotTurn, BotUnavailable
from coexist.bots.config import load_rules
from coexist.bots.respond import respond
from coexist.bots.lex import LexBot, session_id

RULES = load_rules()
PHONE_NUMBER_ID = "106540352242922"
WA_ID = "16505551234"


@pytest.fixture
def lex():
    client = boto3.client("lexv2-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stubber:
        yield LexBot(client, "ABCDEFGHIJ", "TSTALIASID", "en_US", RULES.fallback, session_salt="salt"), stubber
        stubber.assert_no_pending_responses()


def turn(text: str | None, reply_id: str | None = None, failures: int = 0) -> BotTurn:
    return BotTurn(PHONE_NUMBER_ID, WA_ID, text, "text", reply_id, failures, {"greeted": True})


def expected(text: str) -> dict:
    return {"botId": "ABCDEFGHIJ", "botAliasId": "TSTALIASID", "localeId": "en_US", "sessionId": session_id(PHONE_NUMBER_ID, WA_ID, "salt"), "text": text}


def response(intent: str, state: str, dialog: str, messages: list, score: float | None = None, **dialog_fields) -> dict:
    interpretation = {"intent": {"name": intent, "slots": {}, "state": state, "confirmationState": "None"}, "interpretationSource": "Lex"}
    if score is not None:
        interpretation["nluConfidence"] = {"score": score}
    return {
        "messages": messages,
        "sessionState": {
            "dialogAction": {"type": dialog, **dialog_fields},
            "intent": {"name": intent, "slots": {}, "state": state, "confirmationState": "None"},
            "originatingRequestId": "2d4a5b16-6b1e-4a0e-9d4e-3c1f0f0a7e21",
        },
        "interpretations": [interpretation, {"intent": {"name": "FallbackIntent", "slots": {}}, "interpretationSource": "Lex"}],
        "sessionId": session_id(PHONE_NUMBER_ID, WA_ID, "salt"),
    }


def test_session_id_is_stable_per_chat_without_the_phone_number():
    sid = session_id(PHONE_NUMBER_ID, WA_ID, "salt")
    assert sid == session_id(PHONE_NUMBER_ID, WA_ID, "salt")
    assert WA_ID not in sid and PHONE_NUMBER_ID not in sid
    assert sid != session_id(PHONE_NUMBER_ID, "16505550000", "salt") != session_id(PHONE_NUMBER_ID, WA_ID, "other")


def test_an_elicited_slot_with_a_card_becomes_text_and_quick_replies(lex):
    bot, stubber = lex
    card = {
        "title": "Which day suits you?",
        "subtitle": "Weekdays only",
        "buttons": [
            {"text": "Monday", "value": "monday"},
            {"text": "Tuesday morning or afternoon", "value": "tuesday"},
            {"text": "Wednesday", "value": "wednesday"},
            {"text": "Thursday", "value": "thursday"},
        ],
    }
    stubber.add_response(
        "recognize_text",
        response("CheckAvailability", "InProgress", "ElicitSlot", [{"content": "Let's find a time.", "contentType": "PlainText"}, {"contentType": "ImageResponseCard", "imageResponseCard": card}], score=0.93, slotToElicit="Day"),
        expected("any free slots next week?"),
    )
    decision = bot.turn(turn("any free slots next week?"))
    assert (decision.action, decision.intent, decision.confidence, decision.understood) == (REPLY, "CheckAvailability", 0.93, True)
    assert decision.replies[0].text == "Let's find a time." and decision.replies[0].buttons == ()
    assert decision.replies[1].text == "Which day suits you?\nWeekdays only"
    # WhatsApp offers three buttons of 20 characters; the value goes back to Lex when tapped.
    assert decision.replies[1].buttons == (("monday", "Monday"), ("tuesday", "Tuesday morning or…"), ("wednesday", "Wednesday"))


def test_a_tapped_button_sends_its_value_and_a_continued_intent_without_score_is_confident(lex):
    bot, stubber = lex
    stubber.add_response(
        "recognize_text",
        response("CheckAvailability", "InProgress", "ConfirmIntent", [{"content": "Monday 9:00, shall I hold it?", "contentType": "PlainText"}]),
        expected("monday"),
    )
    decision = respond(bot, turn("Monday", reply_id="monday"), RULES).decision
    assert (decision.action, decision.confidence) == (REPLY, 1.0)


def test_close_with_a_fulfilled_intent_resolves(lex):
    bot, stubber = lex
    stubber.add_response(
        "recognize_text",
        response("OpeningHours", "Fulfilled", "Close", [{"content": "We are open 8 to 6.", "contentType": "PlainText"}], score=0.98),
        expected("when are you open"),
    )
    decision = bot.turn(turn("when are you open"))
    assert (decision.action, decision.intent, [r.text for r in decision.replies]) == (RESOLVED, "OpeningHours", ["We are open 8 to 6."])


def test_fallback_intent_is_not_understood_and_counts_towards_the_hand_over(lex):
    bot, stubber = lex
    clarification = [{"content": "Sorry, can you please repeat that?", "contentType": "PlainText"}]
    stubber.add_response("recognize_text", response("FallbackIntent", "ReadyForFulfillment", "Close", clarification), expected("blorp"))
    stubber.add_response("recognize_text", response("FallbackIntent", "ReadyForFulfillment", "Close", clarification), expected("blorp again"))
    first = respond(bot, turn("blorp", failures=0), RULES).decision
    assert (first.action, first.understood, first.confidence) == (REPLY, False, 0.0)
    assert first.replies[0].text == "Sorry, can you please repeat that?"
    second = respond(bot, turn("blorp again", failures=1), RULES).decision
    assert (second.action, second.escalation_reason) == (ESCALATE, "too_many_failures")


def test_a_low_score_hands_over_and_a_human_only_intent_too(lex):
    bot, stubber = lex
    stubber.add_response("recognize_text", response("OpeningHours", "InProgress", "ElicitSlot", [{"content": "Which site?", "contentType": "PlainText"}], score=0.31, slotToElicit="Site"), expected("is it open"))
    assert respond(bot, turn("is it open"), RULES).decision.escalation_reason == "low_confidence"
    stubber.add_response("recognize_text", response("prescription_refill", "InProgress", "ElicitSlot", [{"content": "Which medication?", "contentType": "PlainText"}], score=0.95, slotToElicit="Drug"), expected("my pills ran out"))
    decision = respond(bot, turn("my pills ran out"), RULES).decision
    assert decision.escalation_reason == "human_only_intent"
    assert [r.text for r in decision.replies] == [RULES.escalation_message]  # Lex's slot question is dropped


def test_media_without_caption_never_reaches_lex(lex):
    bot, _ = lex
    decision = bot.turn(turn(None))
    assert decision.understood is False and decision.replies == (RULES.fallback.bot_reply(),)


def test_long_text_is_cut_to_lexs_limit(lex):
    bot, stubber = lex
    stubber.add_response("recognize_text", response("OpeningHours", "Fulfilled", "Close", [], score=0.9), {**expected("x" * 1024), "text": "x" * 1024})
    assert bot.turn(turn("x" * 3000)).action == RESOLVED


@pytest.mark.parametrize(
    "code, status, retryable",
    [("ThrottlingException", 429, True), ("InternalServerException", 500, True), ("DependencyFailedException", 424, True), ("ResourceNotFoundException", 404, False), ("AccessDeniedException", 403, False)],
)
def test_service_errors_are_bot_unavailable(lex, code, status, retryable):
    bot, stubber = lex
    stubber.add_client_error("recognize_text", service_error_code=code, service_message="secret detail", http_status_code=status, expected_params={**expected("hello"), "sessionId": ANY})
    with pytest.raises(BotUnavailable) as caught:
        bot.turn(turn("hello"))
    assert (caught.value.provider, caught.value.code, caught.value.retryable) == ("lex", code, retryable)
    assert "hello" not in str(caught.value)
