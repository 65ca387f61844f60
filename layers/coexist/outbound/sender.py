"""Sending one queued message: circuit, pacing, the call to Meta, and what Meta's answer means.

The sender never fails a message for want of throughput: it waits for its slot (briefly, in
process) or reserves a later one, keeps it on the message and asks for the message to come back
when it is due (`Defer`) — so a backlog drains in slot order and each message waits once, instead
of every waiting message racing for the next free slot on every receive. Transient errors come
back with backoff (`Retry`) until the attempts run out (`Park`: failed, moved to the DLQ with the
reason).

A message is marked `sending`, with an attempt id, just before Meta is called, and leaves that
state with Meta's answer (`accepted`, `failed`, or `queued` again for a retry). A message found
`sending` when it is delivered again was being sent by an attempt that died before recording the
answer: the function timed out or crashed in the call, or the store failed right after it. Meta
may have the message. The Cloud API takes no idempotency key, so sending it again may reach the
customer twice, and a patient getting the same message twice (perhaps a reminder with health
details) is worse than an agent being told that one may not have gone: such a message is failed
as `outcome_unknown`, never re-sent automatically. Its statuses still find it (the send carries
our message id as `biz_opaque_callback_data`, which Meta echoes in every status), so if Meta did
take it, its delivery receipt moves it on to `delivered`/`read`, which outrank `failed`.

A campaign message asks its campaign first (`campaign_state`, read at most every few seconds per
campaign): a cancelled campaign's messages still waiting are failed as `campaign_cancelled`, a
paused campaign's are left `queued` and put back on the queue when it resumes (coexist.campaigns),
so pause and cancel take effect within seconds, not a page later, and a held message never blocks
its customer's FIFO group meanwhile.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from coexist.domain import consent, send_errors
from coexist.domain.pacing import Rate
from coexist.domain.send_errors import Action
from coexist.events.publisher import NoBus
from coexist.inbox import Inbox
from coexist.outbound.deadlines import MAX_INLINE_WAIT_S
from coexist.outbound.graph import SendResult
from coexist.outbound.number_settings import GRAPH, NumberSettings
from coexist.outbound.requests import graph_payload, parse_send_request
from coexist.resources import OUTBOUND_MAX_SEND_ATTEMPTS
from coexist.store.items import from_item_value
from coexist.store.messages import SENDING
from coexist.store.throttle import Slot, Throttle, number_bucket

if TYPE_CHECKING:
    from coexist.events.models import MessageFailed

__all__ = ["MAX_INLINE_WAIT_S", "STALE_SLOT_S", "CircuitOpened", "Defer", "Delivery", "Park", "Retry", "SendReport", "Sender"]
MAX_SLOT_AHEAD_S = 6 * 3600  # reserve at most this far ahead (SQS hides a message for 12 h at most)
# A held slot this far in the past was missed (the message waited on something else, e.g. an open
# circuit): sending in it now would bunch with the slots handed out since, so it takes a new one.
STALE_SLOT_S = 5.0
CIRCUIT_COOL_DOWN_S = 300
# Campaign messages (coexist.campaigns): the share of a number's rate they may take, and how close
# a free slot of the number's bucket must be for one to take it (conversations book further ahead).
CAMPAIGN = "campaign"
CAMPAIGN_SHARE = 0.75
CAMPAIGN_MAX_AHEAD_S = 0.25
CAMPAIGN_RETRY_S = 1.0
CAMPAIGN_STATE_TTL_S = 3.0  # how stale a sender's view of a campaign's state may be
BACK_OFF_BASE_S = 2.0
MAX_BACK_OFF_S = 300


class Defer(Exception):
    """Come back after `seconds` (not a failure of the message)."""

    def __init__(self, seconds: float, reason: str):
        super().__init__(reason)
        self.seconds = seconds
        self.reason = reason


class Retry(Defer):
    """A transient failure: try again after `seconds`."""


@dataclass(frozen=True)
class Delivery:
    message_id: str


@dataclass
class SendReport:
    outcome: str  # sent | failed | skipped
    reason: str | None = None
    wamid: str | None = None


def backoff_s(attempt: int, rng: random.Random = random.Random()) -> float:
    """Exponential backoff with full jitter: many senders never retry in lockstep."""
    return rng.uniform(1, min(MAX_BACK_OFF_S, BACK_OFF_BASE_S * 2 ** max(attempt - 1, 0)))


class Sender:
    def __init__(
        self,
        inbox: Inbox,
        throttle: Throttle,
        number_settings: Callable[[str], NumberSettings],
        transports: dict[str, object],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        events=None,
        campaign_state: Callable[[str], str | None] = lambda campaign_id: None,
    ):
        self.events = events or NoBus()
        self._campaign_state = campaign_state
        self._campaign_states: dict[str, tuple[float, str | None]] = {}
        self.inbox = inbox
        self.throttle = throttle
        self.number_settings = number_settings
        self.transports = transports
        self.clock = clock
        self.sleep = sleep

    def deliver(self, delivery: Delivery) -> SendReport:
        item = self.inbox.messages.get(delivery.message_id)
        if item is not None and self._parked(item) and self.inbox.messages.reopen_parked(delivery.message_id):
            item = self.inbox.messages.get(delivery.message_id)  # redriven from the DLQ: try again
        if item is not None and item.get("status") == SENDING:
            return self._outcome_unknown(delivery.message_id)
        if item is None or item.get("status") != "queued":
            # Already accepted or failed (a redelivery), or never stored: nothing to send.
            return SendReport("skipped", "not queued")
        item = from_item_value(item)
        number, customer = item["phone_number_id"], item["chat_id"]
        if item.get("campaign_id"):
            halted = self._campaign_halted(delivery.message_id, item["campaign_id"])
            if halted:
                return halted

        settings = self.number_settings(number)
        self._wait_for_number_slot(delivery.message_id, item, settings)
        # One message of a pair is in flight at a time (its FIFO group), so this bucket has no race.
        self._wait_for_slot(f"pair#{number}#{customer}", settings.pair_rate, "recipient pair limit")

        request = parse_send_request(item["request"])
        payload = graph_payload(request, to=item.get("wa_id"), recipient=item.get("user_id"))
        # Echoed by Meta in every status of this message: how statuses find it when the answer
        # to this call carries no wamid (End User Messaging Social) or is lost.
        payload["biz_opaque_callback_data"] = delivery.message_id
        if not self.inbox.messages.mark_sending(delivery.message_id, uuid.uuid4().hex):
            return SendReport("skipped", "not queued")
        result: SendResult = self._transport(settings).send_message(self._sender_id(settings), payload)
        if result.ok:
            self.inbox.messages.record_accepted(
                delivery.message_id, settings.transport, wamid=result.wamid, transport_message_id=result.transport_message_id
            )
            # No link item under the wamid: every status names this message in its callback data
            # and lands on it once it carries the wamid (MessageStore.apply_status).
            return SendReport("sent", wamid=result.wamid)
        return self._handle_error(delivery, item, result)

    def _campaign_halted(self, message_id: str, campaign_id: str) -> SendReport | None:
        state = self._campaign_state_of(campaign_id)
        if state == "cancelled":
            self.inbox.messages.record_failure(message_id, send_errors.CAMPAIGN_CANCELLED, None)
            return SendReport("failed", send_errors.CAMPAIGN_CANCELLED)
        if state == "paused":
            return SendReport("skipped", "campaign paused")  # stays queued: the resume enqueues it again
        return None

    def _campaign_state_of(self, campaign_id: str) -> str | None:
        now = self.clock()
        read_at, state = self._campaign_states.get(campaign_id, (float("-inf"), None))
        # A paused state is never trusted from memory: the resume re-enqueues the held messages at
        # once, and a stale "paused" would hold them again until the sweeper's next pass.
        if state == "paused" or now - read_at >= CAMPAIGN_STATE_TTL_S:
            state = self._campaign_state(campaign_id)
            self._campaign_states[campaign_id] = (now, state)
        return state

    def _outcome_unknown(self, message_id: str) -> SendReport:
        """An earlier attempt called Meta and never recorded the answer (see the module docstring)."""
        # The item keeps `send_attempt` and `sending_at`: which attempt it was, and when it started.
        self.inbox.messages.record_failure(message_id, send_errors.OUTCOME_UNKNOWN, None)
        return SendReport("failed", send_errors.OUTCOME_UNKNOWN)

    @staticmethod
    def _parked(item: dict) -> bool:
        return item.get("status") == "failed" and str(item.get("failure_reason", "")).startswith(send_errors.RETRIES_EXHAUSTED)

    def _wait_for_number_slot(self, message_id: str, item: dict, settings: NumberSettings) -> None:
        if item.get("source") == CAMPAIGN:
            self._wait_for_campaign_slot(settings)
            return
        held_ms = item.get("send_slot_ms")
        wait_s = None if held_ms is None else held_ms / 1000 - self.clock()
        if wait_s is not None and wait_s > -STALE_SLOT_S:
            # A slot held since an earlier delivery: no take, so the circuit is read on its own.
            circuit = self.throttle.circuit(settings.phone_number_id)
            if circuit:
                raise Defer(max(1.0, circuit["open_until"] - self.clock()), f"circuit open: {circuit['reason']}")
        else:
            slot = self._take_number_slot(settings, MAX_SLOT_AHEAD_S)
            if not slot.granted:
                raise Defer(slot.wait_s, "waiting for number throughput")
            wait_s = slot.wait_s
            if wait_s > MAX_INLINE_WAIT_S:
                self.inbox.messages.hold_send_slot(message_id, slot.at_s)
        self._wait_or_defer(wait_s, "number throughput")

    def _wait_for_campaign_slot(self, settings: NumberSettings) -> None:
        """Conversations go first (docs/SCALE.md): a campaign message takes a slot of its own
        share of the number's rate, then a slot of the number's bucket only if one is free now.
        It never books a slot ahead, so it never stands between an agent's or a bot's message and
        the next free slot; and the share it may take leaves the rest of every second free for them."""
        share = Rate(settings.number_rate.per_second * CAMPAIGN_SHARE)
        self._wait_for_slot(f"campaign#{settings.phone_number_id}", share, "the campaign share of the number's throughput")
        slot = self._take_number_slot(settings, CAMPAIGN_MAX_AHEAD_S)
        if not slot.granted:
            raise Defer(max(CAMPAIGN_RETRY_S, slot.wait_s), "number throughput taken by conversations")
        self._wait_or_defer(slot.wait_s, "number throughput")

    def _take_number_slot(self, settings: NumberSettings, max_wait_s: float) -> Slot:
        """A slot of the number's bucket; its write refuses while the number's circuit is open."""
        slot = self.throttle.take(number_bucket(settings.phone_number_id), settings.number_rate, max_wait_s)
        if slot.circuit:
            raise Defer(slot.wait_s, f"circuit open: {slot.circuit}")
        return slot

    def _wait_for_slot(self, bucket: str, rate, what: str) -> None:
        slot = self.throttle.take(bucket, rate, MAX_INLINE_WAIT_S)
        if not slot.granted:
            raise Defer(slot.wait_s, f"waiting for {what}")
        self._wait_or_defer(slot.wait_s, what)

    def _wait_or_defer(self, wait_s: float, what: str) -> None:
        """Wait in process for a slot that is close; come back later for one that is not."""
        if wait_s > MAX_INLINE_WAIT_S:
            raise Defer(wait_s, f"waiting for {what}")
        if wait_s > 0:
            self.sleep(wait_s)

    def _transport(self, settings: NumberSettings):
        return self.transports[settings.transport]

    @staticmethod
    def _sender_id(settings: NumberSettings) -> str:
        if settings.transport == GRAPH:
            return settings.phone_number_id
        return settings.social_messaging_phone_number_id or settings.phone_number_id

    def _handle_error(self, delivery: Delivery, item: dict, result: SendResult) -> SendReport:
        verdict = send_errors.classify(result.error_code, result.http_status)
        error = result.error()
        message_id = delivery.message_id
        if verdict.action is Action.FAIL:
            self.inbox.messages.record_failure(message_id, verdict.reason, error)
            self.events.publish(failed_event(item, verdict.reason, result.error_code, self.clock()))
            if send_errors.records_marketing_opt_out(result.error_code):  # the ledger tells the CRM
                self.inbox.contacts.consent.record(consent.platform_opt_out(
                    item["phone_number_id"], item["chat_id"], result.error_code, message_id, int(self.clock()),
                ))
            return SendReport("failed", verdict.reason)
        attempts = self.inbox.messages.record_attempt_error(message_id, verdict.reason, error)
        if verdict.action is Action.STOP_NUMBER:
            # Every queued message of this number would fail the same way: stop and alarm.
            self.throttle.open_circuit(item["phone_number_id"], verdict.reason, CIRCUIT_COOL_DOWN_S)
            raise CircuitOpened(CIRCUIT_COOL_DOWN_S, verdict.reason)
        if attempts >= OUTBOUND_MAX_SEND_ATTEMPTS:
            reason = send_errors.retries_exhausted(verdict.reason)
            self.inbox.messages.record_failure(message_id, reason, error)
            self.events.publish(failed_event(item, reason, result.error_code, self.clock()))
            raise Park(verdict.reason)
        if verdict.action is Action.BACK_OFF:
            raise Defer(backoff_s(attempts), verdict.reason)
        raise Retry(backoff_s(attempts), verdict.reason)


def failed_event(item: dict, reason: str, error_code: int | None, now: float) -> MessageFailed:
    """A message the sender gave up on (Meta refused it for good, or kept failing)."""
    from coexist.events.models import MessageFailed, iso  # with the first failure, not every cold start

    return MessageFailed(
        phone_number_id=item["phone_number_id"], chat_id=item.get("chat_id"), message_id=item.get("wamid") or item["id"],
        coexist_message_id=item["id"], occurred_at=iso(now), reason=reason, error_codes=[error_code] if error_code else [],
    )


class Park(Exception):
    """Meta kept failing this message transiently: it is failed, and moved to the DLQ for a look."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class CircuitOpened(Defer):
    """This delivery opened its number's circuit (token expired, number blocked, …)."""
