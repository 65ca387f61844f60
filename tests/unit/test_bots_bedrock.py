"""The Bedrock provider against botocore's own Converse model (Stubber validates both shapes)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from coexist.bots import ESCALATE, REPLY, RESOLVED, BotTurn, BotUnavailable
from coexist.bots.bedrock import ANSWER_CONTRACT, HISTORY_TURNS, BedrockBot, parse_answer
from coexist.bots.config import load_rules
from coexist.bots.respond import respond

RULES = load_rules()
MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
PHONE_NUMBER_ID = "106540352242922"
WA_ID = "16505551234"


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stubber:
        yield BedrockBot(client, MODEL_ID, RULES.fallback, max_tokens=300), stubber
        stubber.assert_no_pending_responses()


def turn(text: str | None, session: dict | None = None, failures: int = 0) -> BotTurn:
    return BotTurn(PHONE_NUMBER_ID, WA_ID, text, "text", None, failures, session or {})


def converse_response(text: str, stop_reason: str = "end_turn") -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 412, "outputTokens": 61, "totalTokens": 473},
        "metrics": {"latencyMs": 812},
    }


def answer(reply: str, intent: str | None = "opening_hours", confidence: float = 0.9, escalate: bool = False, resolved: bool = False) -> str:
    return json.dumps({"reply": reply, "intent": intent, "confidence": confidence, "escalate": escalate, "resolved": resolved})


def expected(messages: list) -> dict:
    return {"modelId": MODEL_ID, "system": ANY, "messages": messages, "inferenceConfig": {"maxTokens": 300, "temperature": 0.2}}


def user(text: str) -> dict:
    return {"role": "user", "content": [{"text": text}]}


def test_a_json_answer_becomes_a_reply_and_only_the_message_is_sent(bedrock):
    bot, stubber = bedrock
    stubber.add_response("converse", converse_response(answer("We open at 8.")), expected([user("When do you open?")]))
    decision = bot.turn(turn("  When do you open?  "))
    assert (decision.action, decision.intent, decision.confidence, decision.understood) == (REPLY, "opening_hours", 0.9, True)
    assert [r.text for r in decision.replies] == ["We open at 8."]
    assert decision.session["history"][0] == {"role": "user", "text": "When do you open?"}
    assert json.loads(decision.session["history"][1]["text"])["reply"] == "We open at 8."


def test_the_prompt_holds_no_identifiers_and_always_the_answer_contract(bedrock):
    bot, stubber = bedrock
    seen = []

    class Capture:
        def __eq__(self, other):
            seen.append(other)
            return True

    stubber.add_response("converse", converse_response(answer("Hi")), {"modelId": MODEL_ID, "system": Capture(), "messages": Capture(), "inferenceConfig": ANY})
    BedrockBot(bot.client, MODEL_ID, RULES.fallback, system_prompt="You are the Riverside Clinic assistant.").turn(turn("hello"))
    sent = json.dumps(seen)
    assert PHONE_NUMBER_ID not in sent and WA_ID not in sent
    assert seen[0][0]["text"].startswith("You are the Riverside Clinic assistant.") and seen[0][0]["text"].endswith(ANSWER_CONTRACT)


def test_history_is_sent_back_and_bounded(bedrock):
    bot, stubber = bedrock
    session: dict = {}
    for n in range(HISTORY_TURNS + 2):
        sent_history = [{"role": h["role"], "content": [{"text": h["text"]}]} for h in session.get("history", [])]
        stubber.add_response("converse", converse_response(answer(f"answer {n}")), expected([*sent_history, user(f"question {n}")]))
        session = bot.turn(turn(f"question {n}", session)).session
    assert len(session["history"]) == 2 * HISTORY_TURNS
    assert session["history"][0] == {"role": "user", "text": f"question {2}"}


def test_a_broken_history_is_dropped_rather_than_sent(bedrock):
    bot, stubber = bedrock
    broken = {"history": [{"role": "assistant", "text": "orphan"}, {"role": "user", "text": "a"}, {"role": "user", "text": "b"}, {"role": "assistant", "text": "c"}]}
    stubber.add_response("converse", converse_response(answer("ok")), expected([user("next")]))
    assert bot.turn(turn("next", broken)).understood


def test_a_fenced_json_answer_is_still_read():
    assert parse_answer('Sure!\n```json\n{"reply": "Hi", "intent": null, "confidence": 1, "escalate": false, "resolved": false}\n```').reply == "Hi"


@pytest.mark.parametrize(
    "text, stop_reason",
    [
        ("We open at 8 and close at 6.", "end_turn"),  # prose, not the contract
        ('{"reply": "We open at 8", "intent": "hours", "confidence": 1.7, "escalate": false, "resolved": false}', "end_turn"),
        ('{"reply": "", "confidence": 0.9}', "end_turn"),
        ('{"reply": "We open at 8", "intent": "hours", "confidence": 0.9, "escalate": false, "resolved": false}', "max_tokens"),
        ('{"reply": "blocked", "intent": null, "confidence": 0.9, "escalate": false, "resolved": false}', "guardrail_intervened"),
    ],
)
def test_an_answer_outside_the_contract_is_a_fallback(bedrock, text, stop_reason):
    bot, stubber = bedrock
    stubber.add_response("converse", converse_response(text, stop_reason), expected([user("hours?")]))
    decision = bot.turn(turn("hours?", {"keep": 1}))
    assert (decision.action, decision.understood, decision.confidence) == (REPLY, False, 0.0)
    assert decision.replies == (RULES.fallback.bot_reply(),)
    assert decision.session == {"keep": 1}  # nothing remembered from a turn that failed


def test_the_model_escalating_keeps_its_words_then_hands_over(bedrock):
    bot, stubber = bedrock
    stubber.add_response("converse", converse_response(answer("A colleague will help with your refill.", intent="prescription_refill", escalate=True)), expected([user("refill my meds")]))
    decision = respond(bot, turn("refill my meds"), RULES).decision
    assert (decision.action, decision.escalation_reason) == (ESCALATE, "human_only_intent")
    assert [r.text for r in decision.replies] == ["A colleague will help with your refill.", RULES.escalation_message]


def test_resolved_and_low_confidence(bedrock):
    bot, stubber = bedrock
    stubber.add_response("converse", converse_response(answer("Goodbye!", intent="goodbye", confidence=0.95, resolved=True)), expected([user("that's all")]))
    assert respond(bot, turn("that's all"), RULES).decision.action == RESOLVED
    stubber.add_response("converse", converse_response(answer("Maybe Tuesday?", intent="availability", confidence=0.2)), expected([user("hm")]))
    assert respond(bot, turn("hm"), RULES).decision.escalation_reason == "low_confidence"


def test_media_without_caption_never_reaches_the_model(bedrock):
    bot, _ = bedrock
    assert bot.turn(turn(None)).understood is False


@pytest.mark.parametrize(
    "code, status, retryable",
    [("ThrottlingException", 429, True), ("ModelTimeoutException", 408, True), ("ServiceUnavailableException", 503, True), ("ValidationException", 400, False), ("AccessDeniedException", 403, False)],
)
def test_service_errors_are_bot_unavailable(bedrock, code, status, retryable):
    bot, stubber = bedrock
    stubber.add_client_error("converse", service_error_code=code, http_status_code=status, expected_params=expected([user("hello")]))
    with pytest.raises(BotUnavailable) as caught:
        bot.turn(turn("hello"))
    assert (caught.value.provider, caught.value.code, caught.value.retryable) == ("bedrock", code, retryable)


def test_an_overlong_stored_history_is_cut_before_it_is_sent(bedrock):
    bot, stubber = bedrock
    long = [{"role": role, "text": f"{role} {n}"} for n in range(HISTORY_TURNS + 3) for role in ("user", "assistant")]
    kept = long[-2 * HISTORY_TURNS :]
    sent = [{"role": h["role"], "content": [{"text": h["text"]}]} for h in kept]
    stubber.add_response("converse", converse_response(answer("ok")), expected([*sent, user("next")]))
    assert bot.turn(turn("next", {"history": long})).understood
