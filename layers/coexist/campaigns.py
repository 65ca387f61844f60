"""Campaigns: an approved template to a list of customers, sent through the same outbox, policy,
queue and sender as every other message, one page at a time (docs/ARCHITECTURE.md rules 13, 14).

    POST /api/campaigns ─▶ validate + deduplicate the list ─▶ pages stored (DynamoDB, KMS, expiring)
        ─▶ campaign item ─▶ the campaigns queue: page 0, delayed to the start time
    campaigns λ, per page: paused / cancelled? stop ─ messaging limit full? wait for the window to roll
        ─▶ each recipient: its customer (created if new) ─▶ outbox.send (policy: skip with its reason)
        ─▶ page counted ─▶ the next page, delayed by the page's share of the number's throughput
    statuses (ingest, sender) ─▶ sent / delivered / read / failed counted per message, once
    a customer's next message ─▶ marked with the campaign, counted as `replied`

A page is a few seconds of the number's throughput, so the outbound queue never holds more than a
page or two of a campaign, however long its list: agents and bots never wait behind it, and their
sends go first at the sender too (`Sender`: a campaign message never books a slot ahead and takes
at most its share of the number's rate).
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from coexist.customers import chat_for_phone
from coexist.domain import messaging_limit, window
from coexist.domain.campaigns import (
    ACTIVE,
    ERASED,
    LISTED_SKIP_REASONS,
    CampaignState,
    PreparedList,
    may_move,
    skip_reason,
)
from coexist.domain.records import Source
from coexist.inbox import Inbox
from coexist.outbound.outbox import NotQueued, Outbox, Refused
from coexist.outbound.requests import parse_send_request
# The share of a number's throughput a campaign may take (the sender enforces it; pages are paced to it).
from coexist.outbound.sender import CAMPAIGN_SHARE
from coexist.store.campaigns import COUNTERS, CampaignStore
from coexist.store.templates import TemplateStore

PAGE_SIZE = 100
MAX_RECIPIENTS = 100_000
MAX_QUEUE_DELAY_S = 900  # SQS holds a message back at most 15 minutes; longer waits come round again


class CampaignNotFound(Exception):
    pass


class CampaignRejected(Exception):
    """The campaign as asked cannot run (HTTP 422): an unknown or unapproved template, a number not known."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class CampaignConflict(Exception):
    """The campaign's state does not allow the action (HTTP 409)."""


@dataclass(frozen=True)
class NewCampaign:
    phone_number_id: str
    template_name: str
    language: str
    recipients: PreparedList
    start_at: int | None = None
    name: str | None = None
    created_by: str | None = None
    idempotency_key: str | None = None  # the same key is the same campaign: a retried request starts nothing twice


class CampaignQueue:
    """The campaigns queue: one message per page to run, delayed to when it is due."""

    def __init__(self, sqs_client, queue_url: str):
        self.sqs = sqs_client
        self.url = queue_url

    def schedule(self, campaign_id: str, page: int, delay_s: float = 0) -> None:
        self.sqs.send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps({"campaign_id": campaign_id, "page": page}),
            DelaySeconds=max(0, min(MAX_QUEUE_DELAY_S, round(delay_s))),
        )


def campaign_id_for(phone_number_id: str, idempotency_key: str | None) -> str:
    if idempotency_key:
        return "k" + hashlib.sha256(f"{phone_number_id}\n{idempotency_key}".encode()).hexdigest()[:24]
    return "k" + uuid.uuid4().hex[:24]


def template_request(name: str, language: str, parameters: tuple[str, ...]):
    components = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in parameters]}] if parameters else []
    return parse_send_request({"type": "template", "template": {"name": name, "language": {"code": language}, "components": components}})


class Campaigns:
    def __init__(
        self,
        inbox: Inbox,
        outbox: Outbox,
        store: CampaignStore,
        templates: TemplateStore,
        queue: CampaignQueue,
        number_rate: Callable[[str], float],
        page_size: int = PAGE_SIZE,
        clock: Callable[[], float] = time.time,
        on_finished: Callable[[dict], None] = lambda campaign: None,
    ):
        self.inbox = inbox
        self.outbox = outbox
        self.store = store
        self.templates = templates
        self.queue = queue
        self.number_rate = number_rate  # msg/s of the number (its throughput bucket's rate)
        self.page_size = page_size
        self.clock = clock
        self.on_finished = on_finished  # a campaign with nothing left to send (finished or cancelled): tell whoever listens

    # --- the API's side -------------------------------------------------------------------------
    def create(self, new: NewCampaign) -> dict:
        number = self.inbox.numbers.get(new.phone_number_id)
        if not number or not number.get("waba_id"):
            raise CampaignRejected("unknown_number", f"Number {new.phone_number_id} is not known here yet (no webhook has named its account).")
        template = self.templates.get(number["waba_id"], new.template_name, new.language)
        if template is None:
            raise CampaignRejected("template_not_approved", f"Template {new.template_name!r} ({new.language}) is not known for this number's account; sync templates or check the name.")
        if template.get("status") != "APPROVED":
            raise CampaignRejected("template_not_approved", f"Template {new.template_name!r} is {template.get('status')}, not APPROVED.")
        now = int(self.clock())
        campaign_id = campaign_id_for(new.phone_number_id, new.idempotency_key)
        if new.idempotency_key and self.store.get(campaign_id) is not None:
            return self.view(campaign_id)
        recipients = new.recipients.recipients
        chunks = [recipients[i:i + self.page_size] for i in range(0, len(recipients), self.page_size)]
        start_at = new.start_at if new.start_at and new.start_at > now else None
        campaign = {
            "campaign_id": campaign_id, "name": new.name, "phone_number_id": new.phone_number_id,
            "portfolio": number["waba_id"], "template_name": new.template_name, "language": new.language,
            "template_category": template.get("category"),
            "state": (CampaignState.SCHEDULED if start_at else CampaignState.RUNNING).value,
            "start_at": start_at or now, "created_at": now, "created_by": new.created_by,
            "targeted": new.recipients.targeted, "pages": len(chunks), "next_page": 0,
            **{f"skipped_{reason}": new.recipients.skipped.get(reason, 0) for reason in set(LISTED_SKIP_REASONS) | set(new.recipients.skipped)},
        }
        if not self.store.create(campaign, chunks):
            return self.view(campaign_id)  # the same key, stored by a concurrent request a moment ago
        self.queue.schedule(campaign_id, 0, (start_at or now) - now)
        return self.view(campaign_id)

    def view(self, campaign_id: str) -> dict:
        campaign = self.store.get(campaign_id)
        if campaign is None:
            raise CampaignNotFound(campaign_id)
        skipped = {k.removeprefix("skipped_"): int(v) for k, v in campaign.items() if k.startswith("skipped_")}
        counts = {c: int(campaign.get(c, 0)) for c in COUNTERS}
        waiting = None
        if campaign["state"] == CampaignState.WAITING_FOR_MESSAGING_LIMIT:
            waiting = {"until": _iso(campaign.get("waiting_until")), "messaging_limit": campaign.get("waiting_limit"),
                       "reached": campaign.get("waiting_reached")}
        return {
            "campaign_id": campaign_id, "name": campaign.get("name"), "phone_number_id": campaign["phone_number_id"],
            "template": {"name": campaign["template_name"], "language": campaign["language"], "category": campaign.get("template_category")},
            "state": campaign["state"], "start_at": _iso(campaign.get("start_at")), "created_at": _iso(campaign.get("created_at")),
            "created_by": campaign.get("created_by"), "finished_at": _iso(campaign.get("finished_at")),
            "targeted": int(campaign["targeted"]), "skipped": skipped,
            # Not yet put through the policy: the pages still to run.
            "pending": max(0, int(campaign["targeted"]) - sum(skipped.values()) - counts["queued"]),
            **counts,
            "pages": {"total": int(campaign["pages"]), "done": int(campaign.get("next_page", 0))},
            "waiting_for_messaging_limit": waiting,
        }

    def act(self, campaign_id: str, action: str) -> dict:
        """pause | resume | cancel."""
        campaign = self.store.get(campaign_id)
        if campaign is None:
            raise CampaignNotFound(campaign_id)
        state = CampaignState(campaign["state"])
        still_sending = action == "cancel" and state is CampaignState.FINISHED and self._still_sending(campaign_id)
        target = may_move(action, state, still_sending)
        if target is None:
            ended = " (nothing of it is left to send)" if state is CampaignState.FINISHED else ""
            raise CampaignConflict(f"A {state.value} campaign cannot be {action}d{ended}.")
        if action == "resume" and int(campaign.get("start_at", 0)) > self.clock():
            target = CampaignState.SCHEDULED
        if not self.store.move(campaign_id, {state}, target, remove=("waiting_until",) if action != "resume" else ()):
            raise CampaignConflict("The campaign changed meanwhile; read it again.")
        if target is CampaignState.CANCELLED:
            self.on_finished(self.store.get(campaign_id) or campaign)
        if action == "resume":
            # The messages the sender held back while it was paused go out first (they stayed
            # `queued`; the queue drops a copy of one it still holds: deduplication by message id).
            for message in self.inbox.messages.unsent_of_campaign(campaign_id):
                if message.get("status") == "queued":
                    self.outbox.queue.enqueue(message["id"], message["phone_number_id"], message["chat_id"])
            # A resumed campaign picks up at its next page (a page message still in the queue is
            # for a page already run, or runs the same page: only one run counts).
            self.queue.schedule(campaign_id, int(campaign.get("next_page", 0)), max(0, int(campaign.get("start_at", 0)) - self.clock()))
        return self.view(campaign_id)

    def _still_sending(self, campaign_id: str) -> bool:
        return any(m.get("status") == "queued" for m in self.inbox.messages.unsent_of_campaign(campaign_id))

    # --- the driver: one page ------------------------------------------------------------------
    def run_page(self, campaign_id: str, page: int) -> str:
        """Run one page of the campaign if it is due; returns what happened (for the log)."""
        campaign = self.store.get(campaign_id)
        if campaign is None:
            return "unknown campaign"
        state, next_page, total = CampaignState(campaign["state"]), int(campaign.get("next_page", 0)), int(campaign["pages"])
        if state not in ACTIVE:
            return f"not running: {state.value}"
        if page != next_page:
            if page == next_page - 1:  # a retry after the page was counted: make sure the next one is on its way
                self._after_page(campaign, next_page, 0)
            return "stale page"
        now = self.clock()
        if state is CampaignState.SCHEDULED:
            if int(campaign["start_at"]) > now:
                self.queue.schedule(campaign_id, page, int(campaign["start_at"]) - now)
                return "not yet"
            self.store.move(campaign_id, {CampaignState.SCHEDULED}, CampaignState.RUNNING)
        if page >= total:
            self._finish(campaign)
            return "finished"
        recipients = self.store.page(campaign_id, page)
        room = self._room(campaign, len(recipients), now)
        if room.free_at is not None:
            self.store.move(campaign_id, ACTIVE, CampaignState.WAITING_FOR_MESSAGING_LIMIT,
                            sets={"waiting_until": int(room.free_at), "waiting_limit": room.limit, "waiting_reached": room.reached})
            self.queue.schedule(campaign_id, page, room.free_at - now)
            return "waiting for the messaging limit"
        if state is CampaignState.WAITING_FOR_MESSAGING_LIMIT:
            self.store.move(campaign_id, {CampaignState.WAITING_FOR_MESSAGING_LIMIT}, CampaignState.RUNNING,
                            remove=("waiting_until", "waiting_limit", "waiting_reached"))
        queued, skipped = self._send_page(campaign, recipients)
        if self.store.finish_page(campaign_id, page, queued, skipped):
            self._after_page(campaign, page + 1, len(recipients))
        return f"page {page + 1} of {total}"

    def _send_page(self, campaign: dict, recipients) -> tuple[int, dict[str, int]]:
        number, campaign_id = campaign["phone_number_id"], campaign["campaign_id"]
        queued, skipped = 0, {}
        for recipient in recipients:
            if not recipient.wa_id:
                skipped[ERASED] = skipped.get(ERASED, 0) + 1
                continue
            chat = chat_for_phone(self.inbox, number, recipient.wa_id)
            request = template_request(campaign["template_name"], campaign["language"], recipient.parameters)
            try:
                accepted = self.outbox.send(chat.chat_id, request, source=Source.CAMPAIGN, idempotency_key=f"campaign:{campaign_id}",
                                            chat_item=chat, campaign_id=campaign_id)
            except Refused as refused:
                reason = skip_reason(refused.refusal.code)
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            except NotQueued:
                pass  # stored: the sweeper puts it on the queue; it counts as queued
            else:
                if accepted.created:
                    self.store.note_recipient(chat.chat_id, campaign_id, accepted.message["id"])
            queued += 1
            if not window.is_open(chat.last_customer_message_at, int(self.clock())):
                self.store.reach(campaign["portfolio"], chat.chat_id, self.clock())
        return queued, skipped

    def _room(self, campaign: dict, wanted: int, now: float) -> messaging_limit.Room:
        limit = self.limit_of(campaign["portfolio"])
        if limit == messaging_limit.UNLIMITED:
            return messaging_limit.Room(0, limit)
        # A page larger than the whole tier still goes once the window is empty.
        wanted = min(wanted, limit)
        return messaging_limit.room_for(wanted, limit, self.store.reached_by_hour(campaign["portfolio"], now), now)

    def messaging_limit_view(self, phone_number_id: str) -> dict:
        portfolio = self._portfolio(phone_number_id)
        known = self.store.messaging_limit(portfolio) or {}
        limit = int(known.get("messaging_limit", messaging_limit.DEFAULT_LIMIT))
        room = messaging_limit.room_for(0, limit, self.store.reached_by_hour(portfolio, self.clock()), self.clock())
        return {
            "portfolio": portfolio, "messaging_limit": None if room.unlimited else limit, "unlimited": room.unlimited,
            "source": known.get("messaging_limit_source", "default"), "updated_at": _iso(known.get("messaging_limit_at")),
            "quality_rating": known.get("quality_rating"), "quality_source": known.get("quality_rating_source"),
            "reached_last_24h": room.reached, "left": room.left,
        }

    def set_messaging_limit(self, phone_number_id: str, limit: int | None, quality: str | None, by: str) -> dict:
        self.store.record_messaging_limit(self._portfolio(phone_number_id), int(self.clock()), f"set_by:{by}", limit, quality)
        return self.messaging_limit_view(phone_number_id)

    def refresh_messaging_limit(self, phone_number_id: str, described: dict) -> dict:
        """What Meta's Graph API says of the number now (`GET /{phone_number_id}`: its
        `messaging_limit_tier` and `quality_rating`), kept like a webhook's word (the newest wins)."""
        limit = messaging_limit.limit_of(described.get("messaging_limit_tier"))
        quality = described.get("quality_rating") if isinstance(described.get("quality_rating"), str) else None
        self.store.record_messaging_limit(self._portfolio(phone_number_id), int(self.clock()), "graph_api", limit, quality)
        return self.messaging_limit_view(phone_number_id)

    def _portfolio(self, phone_number_id: str) -> str:
        """Meta counts the limit per business portfolio; this deployment knows a number's account
        (WABA), and counts per account: one account per portfolio (docs/SCALE.md)."""
        number = self.inbox.numbers.get(phone_number_id)
        if not number or not number.get("waba_id"):
            raise CampaignNotFound(f"number {phone_number_id}")
        return number["waba_id"]

    def limit_of(self, portfolio: str) -> int:
        known = self.store.messaging_limit(portfolio) or {}
        return int(known.get("messaging_limit", messaging_limit.DEFAULT_LIMIT))

    def _after_page(self, campaign: dict, next_page: int, sent: int) -> None:
        if next_page >= int(campaign["pages"]):
            self._finish(campaign)
            return
        # The next page when this one has gone out at the campaign's share of the number's rate.
        rate = max(0.1, self.number_rate(campaign["phone_number_id"]) * CAMPAIGN_SHARE)
        self.queue.schedule(campaign["campaign_id"], next_page, sent / rate)

    def _finish(self, campaign: dict) -> None:
        """The one place a campaign finishes: every page has been run (its messages may still be
        on their way; their statuses keep counting)."""
        if self.store.move(campaign["campaign_id"], {CampaignState.RUNNING}, CampaignState.FINISHED,
                           sets={"finished_at": int(self.clock())}):
            self.on_finished(self.store.get(campaign["campaign_id"]) or campaign)


def _iso(epoch) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))
