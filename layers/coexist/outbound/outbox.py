"""Accepting a send: policy first, then the message is stored as `queued` and put on the
outbound FIFO queue. The same operation serves agents, the bot and campaigns (`source`)."""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass

from coexist.domain.chat import Chat
from coexist.domain import policy, window
from coexist.inbox import Inbox
from coexist.outbound.queue import OutboundQueue
from coexist.outbound.requests import FREE_FORM_TYPES, TemplateRequest
from coexist.store.chats import BotHold
from coexist.store.consent import states_of as consent_states_of
from coexist.store.memo import ReadAtMostEvery
from coexist.store.messages import OutboundMessage
from coexist.store.numbers import coexistence_state_of
from coexist.store.templates import TemplateStore


class ChatNotFound(Exception):
    pass


class Refused(Exception):
    def __init__(self, refusal: policy.Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


class HoldLost(Exception):
    """The bot's turn no longer holds the chat (a person took over, or the chat went): its reply was
    neither stored nor queued."""


class NotQueued(Exception):
    """Stored, but the queue could not take it; retrying with the same Idempotency-Key is safe:
    the retry puts it on the queue again (and the sweeper does, should nobody retry)."""


@dataclass
class Accepted:
    message: dict
    created: bool
    parked: bool = False  # the reply's write ended the bot's turn, its token waiting for the customer (BotHold.turn)


def message_id_for(chat: str, idempotency_key: str | None) -> str:
    """The same key for the same chat is the same message: it can never be sent twice."""
    if idempotency_key:
        return "out." + hashlib.sha256(f"{chat}\n{idempotency_key}".encode()).hexdigest()[:32]
    return "out." + uuid.uuid4().hex


# How long an API instance trusts what it read of a number and its account (state, WABA): the
# sender caches its number settings as long. A number offboarded, disconnected or reconnected is
# refused (or allowed) by the API within this many seconds; the sender's own checks still apply.
NUMBER_STATE_TTL_S = 60.0


class Outbox:
    def __init__(self, inbox: Inbox, templates: TemplateStore, queue: OutboundQueue, clock=time.time,
                 number_state_ttl_s: float = NUMBER_STATE_TTL_S):
        self.inbox = inbox
        self.templates = templates
        self.queue = queue
        self.clock = clock
        # The number's item and its account's state, read at most once per `number_state_ttl_s`.
        self._number = ReadAtMostEvery(self._read_number, number_state_ttl_s, clock=lambda: self.clock())

    def _read_number(self, phone_number_id: str) -> tuple[dict, dict | None]:
        number_item = self.inbox.numbers.get(phone_number_id) or {}
        account = self.inbox.accounts.state(number_item["waba_id"]) if number_item.get("waba_id") else None
        return number_item, account

    def send(
        self, chat: str, request, source: str, idempotency_key: str | None = None, sent_by: str | None = None,
        purpose: str | None = None, chat_item: Chat | None = None, campaign_id: str | None = None,
        hold: BotHold | None = None,
    ) -> Accepted:
        """Policy, then store as `queued`, then the queue. `purpose` names the consent the send
        relies on (e.g. `reminders`); it is kept on the message. `chat_item`: the chat as the caller
        just read it, if it did (one read fewer). `campaign_id`: the campaign sending it (its
        progress counts the message's statuses). `hold`: a bot's reply, stored only while the bot's
        turn holds the chat, in one transaction with the chat's recency (and the turn's end, for its
        last reply); `HoldLost` when a person took over."""
        chat_item = chat_item or self.inbox.chats.get(chat)
        if chat_item is None or chat_item.merged_into:
            raise ChatNotFound(chat)
        # The customer by its phone number when Meta shared it, else by its BSUID (Meta's
        # "Business-scoped user IDs" page: `to` for a phone number, `recipient` for a BSUID).
        number, (wa_id, user_id) = chat_item.phone_number_id, chat_item.recipient
        message_id = message_id_for(chat, idempotency_key)

        number_item, account = self._number(number)
        template = self._template(number_item, request)
        refusal = policy.check(self._context(number_item, account, chat, chat_item, request, template, purpose))
        if refusal:
            # A retry of a message accepted before (the same Idempotency-Key) is that message, even
            # if the policy would refuse it now (the window closed since): looked up only here, as
            # the conditional write below finds every other retry without a read.
            existing = self.inbox.messages.get(message_id) if idempotency_key else None
            if existing:
                return self._again(existing, chat)
            raise Refused(refusal)

        now = self.clock()
        message = OutboundMessage(
            id=message_id,
            chat_id=chat,
            phone_number_id=number,
            wa_id=wa_id,
            user_id=user_id,
            source=source,
            type=request.type,
            text=request.display_text(),
            content=request.graph_object(),
            request=request.model_dump(mode="json", exclude_none=True),
            queued_at=now,
            template_category=template.get("category") if template else None,
            sent_by=sent_by,
            idempotency_key=idempotency_key,
            purpose=purpose,
            campaign_id=campaign_id,
        )
        if hold is not None:
            return self._store_held(chat, chat_item, message, hold, int(now))
        created, stored = self.inbox.messages.create_outbound(message)
        if not created:  # the same key, stored by a concurrent request a moment ago
            return self._again(stored, chat)
        self._enqueue(stored)
        self.inbox.chats.raise_last_message(chat, int(now), campaign=campaign_id is not None)
        self._note_entry_point(chat, chat_item, int(now))
        return Accepted(stored, created=True)

    def _store_held(self, chat: str, chat_item: Chat, message: OutboundMessage, hold: BotHold, now: int) -> Accepted:
        """The bot's reply and its chat's write in one transaction: the message exists only if the
        bot still held the chat when it was stored; then the queue."""
        write = self.inbox.chats.bot_reply(chat, hold, now)
        stored = self.inbox.messages.create_outbound_along(message, write)
        if stored is None:
            raise HoldLost(chat)
        self._enqueue(stored)
        self._note_entry_point(chat, chat_item, now)
        return Accepted(stored, created=True, parked=write.parks)

    def _note_entry_point(self, chat: str, chat_item: Chat, now: int) -> None:
        if window.answers_entry_point(chat_item.referral_at, now):
            self.inbox.chats.note_entry_point_reply(chat, now)

    def _again(self, existing: dict, chat: str) -> Accepted:
        """The same message asked for again (the same Idempotency-Key). Still `queued`, it is put
        on the queue again: the first request may have stored it and then failed to enqueue it
        (answered 503), and the queue drops the copy of one it already holds (deduplication by
        message id), while the sender never sends a message that is no longer queued."""
        if existing.get("status") == "queued":
            self._enqueue(existing)
            self.inbox.chats.raise_last_message(chat, int(existing["timestamp"]), campaign=bool(existing.get("campaign_id")))
        return Accepted(existing, created=False)

    def _enqueue(self, message: dict) -> None:
        try:
            self.queue.enqueue(message["id"], message["phone_number_id"], message["chat_id"])
        except Exception as error:
            raise NotQueued(message["id"]) from error

    def _template(self, number_item: dict, request) -> dict | None:
        if not isinstance(request, TemplateRequest):
            return None
        waba = number_item.get("waba_id")
        if not waba:
            return None
        return self.templates.get(waba, request.template.name, request.template.language.code)

    def _context(self, number_item: dict, account: dict | None, customer_id: str, chat_item: Chat, request,
                 template: dict | None, purpose: str | None = None) -> policy.SendContext:
        number = number_item.get("phone_number_id", "")
        state = coexistence_state_of(number_item, account)["state"] if number_item else "unknown"
        is_template = isinstance(request, TemplateRequest)
        # Consent is asked of templates only (a free-form reply answers the customer inside the
        # window): other sends need not read the contact.
        contact = (self.inbox.contacts.get(number, customer_id) or {}) if is_template else {}
        last_customer = chat_item.last_customer_message_at
        return policy.SendContext(
            free_form=request.type in FREE_FORM_TYPES,
            window_open=window.is_open(last_customer, int(self.clock())),
            number_state=state,
            consent=consent_states_of(contact),
            # What the caller sends it for (a reminder: `reminders`), else what the request names.
            purpose=(purpose or request.purpose) if is_template else None,
            template_status=(template or {}).get("status") if is_template else None,
            template_category=(template or {}).get("category") if is_template else None,
            template_name=request.template.name if is_template else None,
            template_params_expected=int(template["body_parameters"]) if template and "body_parameters" in template else None,
            template_params_given=request.template.body_parameters() if is_template else None,
        )
