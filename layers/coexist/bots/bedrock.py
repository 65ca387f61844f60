"""A model on Amazon Bedrock behind the bot turn (`bedrock-runtime` Converse).

The model answers with one strict JSON object; anything else is a fallback, never shown as is. The
prompt holds only what the answer needs: the instructions, a few recent turns and the message. No
names, numbers or ids: the model has no use for them and they would land in invocation logs.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from coexist.bots.config import Reply
from coexist.bots.errors import SERVICE_ERRORS, unavailable
from coexist.bots.model import ESCALATE, HUMAN_ONLY_INTENT, REPLY, RESOLVED, TEXT_MAX, BotDecision, BotTurn, BotReply

DEFAULT_SYSTEM_PROMPT = (
    "You are the WhatsApp assistant of a business. Answer briefly (at most three sentences), politely, "
    "in the customer's language. Never invent facts, prices or availability; when you do not know, say so. "
    "You cannot book, change or cancel appointments, give medical, legal or financial advice, or look up "
    "personal records: for those, or when the customer wants a person, set escalate to true."
)
# Always appended, even to a custom prompt: the parser below depends on it.
ANSWER_CONTRACT = (
    "Reply with one JSON object and nothing else, with exactly these keys: "
    '"reply" (string, the message to the customer), "intent" (short snake_case label of what the customer wants, or null), '
    '"confidence" (number from 0 to 1, how sure you are you understood), "escalate" (boolean), '
    '"resolved" (boolean, true only when the customer needs nothing more).'
)
HISTORY_TURNS = 4  # customer/bot exchanges kept as context
HISTORY_TEXT_LIMIT = 1000  # characters per remembered message: the session travels in workflow state
HISTORY_REPLY_LIMIT = 800  # the bot's remembered reply, kept inside a still-valid JSON object
MESSAGE_LIMIT = 2000  # characters of the current message sent to the model

_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class ModelAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)  # the answer quotes the customer

    reply: str = Field(min_length=1, max_length=TEXT_MAX)
    intent: str | None = Field(default=None, max_length=64)
    confidence: float = Field(ge=0.0, le=1.0)
    escalate: bool = False
    resolved: bool = False


def parse_answer(text: str) -> ModelAnswer | None:
    """The JSON object in the model's text (models like to wrap it in a code fence), or None."""
    found = _JSON_OBJECT.search(text)
    if not found:
        return None
    try:
        return ModelAnswer.model_validate_json(found.group(0))
    except ValidationError:
        return None


def _history(session: dict) -> list[dict[str, str]]:
    """The remembered turns, kept only if well-formed: Converse wants user/assistant alternating,
    starting with the user."""
    history = [h for h in session.get("history", []) if isinstance(h, dict) and h.get("role") in ("user", "assistant") and h.get("text")]
    while history and history[0]["role"] != "user":
        history.pop(0)
    for earlier, later in zip(history, history[1:]):
        if earlier["role"] == later["role"]:
            return []
    if history and history[-1]["role"] != "assistant":
        history.pop()
    return history[-2 * HISTORY_TURNS :]


class BedrockBot:
    def __init__(
        self,
        client,
        model_id: str,
        fallback: Reply,
        max_tokens: int = 300,
        temperature: float = 0.2,
        system_prompt: str | None = None,
    ):
        self.client = client
        self.model_id = model_id
        self.fallback = fallback
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.system_prompt = (system_prompt or DEFAULT_SYSTEM_PROMPT).strip() + "\n\n" + ANSWER_CONTRACT

    def _not_understood(self, turn: BotTurn, session: dict | None = None) -> BotDecision:
        return BotDecision(REPLY, (self.fallback.bot_reply(),), None, 0.0, None, False, session if session is not None else turn.session)

    def turn(self, turn: BotTurn) -> BotDecision:
        if not turn.text or not turn.text.strip():
            return self._not_understood(turn)
        history = _history(turn.session)
        message = turn.text.strip()[:MESSAGE_LIMIT]
        messages: list[dict[str, Any]] = [{"role": h["role"], "content": [{"text": h["text"]}]} for h in history]
        messages.append({"role": "user", "content": [{"text": message}]})
        try:
            response = self.client.converse(
                modelId=self.model_id,
                system=[{"text": self.system_prompt}],
                messages=messages,
                inferenceConfig={"maxTokens": self.max_tokens, "temperature": self.temperature},
            )
        except SERVICE_ERRORS as error:
            raise unavailable("bedrock", error) from None
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block.get("text", "") for block in content)
        # A cut-off (max_tokens) or filtered answer is not one to trust, even if it happens to parse.
        answer = parse_answer(text) if response.get("stopReason") in ("end_turn", "stop_sequence") else None
        if answer is None:
            return self._not_understood(turn)
        remembered = [
            *history,
            {"role": "user", "text": message[:HISTORY_TEXT_LIMIT]},
            # The model's own JSON, so the history keeps showing it the format it must answer in.
            {"role": "assistant", "text": answer.model_copy(update={"reply": answer.reply[:HISTORY_REPLY_LIMIT]}).model_dump_json()},
        ][-2 * HISTORY_TURNS :]
        session = {**turn.session, "history": remembered}
        replies = (BotReply(answer.reply),)
        if answer.escalate:
            # The model judged this needs a person: the nearest of the workflow's reasons.
            return BotDecision(ESCALATE, replies, answer.intent, answer.confidence, HUMAN_ONLY_INTENT, True, session)
        action = RESOLVED if answer.resolved else REPLY
        return BotDecision(action, replies, answer.intent, answer.confidence, None, True, session)
