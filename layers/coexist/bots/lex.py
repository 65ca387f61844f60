"""An Amazon Lex V2 bot behind the bot turn (`lexv2-runtime` RecognizeText).

Lex keeps the dialog state (slots, active intent) server-side under the session id, so nothing of
it is carried in the workflow's session. The session id is a digest of the chat, never the
phone number: Lex writes session ids into its conversation logs.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from coexist.bots.config import Reply
from coexist.bots.errors import SERVICE_ERRORS, unavailable
from coexist.bots.model import BUTTON_TITLE_MAX, BUTTONS_MAX, REPLY, RESOLVED, TEXT_MAX, BotDecision, BotReply, BotTurn

TEXT_LIMIT = 1024  # RecognizeText's text maximum
FALLBACK_INTENT = "FallbackIntent"
# Lex leaves the score out while it continues an intent it already chose (eliciting a slot, asking
# to confirm); that is not doubt, so it must not trip the confidence threshold.
CONTINUING_CONFIDENCE = 1.0


def session_id(phone_number_id: str, customer_id: str, salt: str = "") -> str:
    """Stable per chat, no phone number inside. An unsalted hash of a phone number can be reversed
    by trying every number, so deployments should set a secret salt."""
    digest = hmac.new(salt.encode(), f"{phone_number_id}:{customer_id}".encode(), hashlib.sha256).hexdigest()
    return "wa-" + digest[:40]


def _title(text: str) -> str:
    return text if len(text) <= BUTTON_TITLE_MAX else text[: BUTTON_TITLE_MAX - 1].rstrip() + "…"


def _replies(messages: list[dict[str, Any]]) -> tuple[BotReply, ...]:
    replies = []
    for message in messages:
        kind = message.get("contentType")
        if kind in ("PlainText", "SSML") and message.get("content"):
            replies.append(BotReply(message["content"][:TEXT_MAX]))
        elif kind == "ImageResponseCard" and (card := message.get("imageResponseCard")):
            body = "\n".join(part for part in (card.get("title"), card.get("subtitle")) if part)
            # A card's button value is what Lex expects back as text; WhatsApp offers 3 buttons.
            buttons = tuple((b["value"], _title(b["text"])) for b in card.get("buttons", [])[:BUTTONS_MAX])
            replies.append(BotReply(body[:TEXT_MAX], buttons))
        # CustomPayload is the bot author's own format: nothing WhatsApp can show as is.
    return tuple(replies)


def _confidence(response: dict[str, Any], intent: str | None) -> float:
    interpretations = response.get("interpretations") or []
    chosen = next((i for i in interpretations if i.get("intent", {}).get("name") == intent), interpretations[0] if interpretations else {})
    score = chosen.get("nluConfidence", {}).get("score")
    if score is not None:
        return max(0.0, min(1.0, float(score)))
    return 0.0 if intent in (None, FALLBACK_INTENT) else CONTINUING_CONFIDENCE


class LexBot:
    def __init__(self, client, bot_id: str, bot_alias_id: str, locale_id: str, fallback: Reply, session_salt: str = ""):
        self.client = client
        self.bot_id = bot_id
        self.bot_alias_id = bot_alias_id
        self.locale_id = locale_id
        self.fallback = fallback
        self.session_salt = session_salt

    def turn(self, turn: BotTurn) -> BotDecision:
        # A tapped card button sends its value back, as Lex's own web clients do.
        text = turn.reply_id or turn.text
        if not text or not text.strip():
            return BotDecision(REPLY, (self.fallback.bot_reply(),), None, 0.0, None, False, turn.session)
        try:
            response = self.client.recognize_text(
                botId=self.bot_id,
                botAliasId=self.bot_alias_id,
                localeId=self.locale_id,
                sessionId=session_id(turn.phone_number_id, turn.customer_id, self.session_salt),
                text=text[:TEXT_LIMIT],
            )
        except SERVICE_ERRORS as error:
            raise unavailable("lex", error) from None
        state = response.get("sessionState", {})
        intent_state = state.get("intent", {})
        intent = intent_state.get("name")
        replies = _replies(response.get("messages", []))
        if intent in (None, FALLBACK_INTENT):
            return BotDecision(REPLY, replies or (self.fallback.bot_reply(),), None, 0.0, None, False, turn.session)
        confidence = _confidence(response, intent)
        closed = state.get("dialogAction", {}).get("type") == "Close"
        fulfilled = intent_state.get("state") == "Fulfilled"
        if closed and intent_state.get("state") == "Failed":
            # Lex gave up on the intent (fulfilment failed): a failed turn for the failure budget.
            return BotDecision(REPLY, replies or (self.fallback.bot_reply(),), intent, confidence, None, False, turn.session)
        action = RESOLVED if closed and fulfilled else REPLY
        if not replies and action == REPLY:
            replies = (self.fallback.bot_reply(),)
        return BotDecision(action, replies, intent, confidence, None, True, turn.session)
