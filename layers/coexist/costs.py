"""The cost ledger's two sides: ingest prices what Meta delivers, the API reports a period.

Recording (called by ingest, after the statuses and echoes of a webhook are stored):
- a status carrying `pricing` → an entry on Meta's word (category, billable, type, model);
- a delivery (`delivered`, `read`, `played`) without it → an entry by our rules (coexist.domain.costs)
  from what we know of the message (template or free-form, its template's category, the window),
  unless the message already carries Meta's pricing (Meta prices one status of a message);
- a reply sent from the Business App (an echo) → a free entry, with what the same reply would have
  cost had the API sent it (`if_sent_by_api`), the report's headline.

Each entry is priced from the rate card when it is written (its `rate_card` version is kept), so a
new card prices what comes after it and the ledger keeps what was charged.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from importlib import resources as package_files

from coexist.domain import costs as rules
from coexist.domain.records import OUTBOUND, Source, MessageRecord, StatusUpdate
from coexist.domain import window
from coexist.domain.window import CUSTOMER_SERVICE_WINDOW_S
from coexist.resources import RATE_CARD
from coexist.store.chats import ChatRepository
from coexist.store.costs import CostLedger
from coexist.store.messages import OUTBOUND_ID_PREFIX, MessageStore

DELIVERED = frozenset({"delivered", "read", "played"})  # "delivered" is skipped when read coincides
API = "api"
BUSINESS_APP = "business_app"
GROUPINGS = ("category", "day", "number")
REPORT_LIMIT = 100_000  # entries one report reads; a longer period says `complete: false`


def load_rate_card(override: str = "") -> rules.RateCard:
    """The deployment's rate card: `override` (a JSON document, COEXIST_RATE_CARD) or the bundled one."""
    if override.strip():
        try:
            document = json.loads(override)
        except ValueError as error:
            raise rules.RateCardError(f"{error.__class__.__name__}: COEXIST_RATE_CARD is not JSON") from None
    else:
        document = json.loads(package_files.files("coexist.pricing").joinpath(RATE_CARD).read_text())
    return rules.RateCard.from_document(document)


def _day(at: int) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d")


def _is_free_entry_point(chat, at: int) -> bool:
    if chat is None:
        return False
    expires = window.free_entry_point_expires_at(chat.referral_at, chat.entry_point_replied_at)
    return expires is not None and chat.entry_point_replied_at <= at < expires


@dataclass
class CostRecorder:
    ledger: CostLedger
    messages: MessageStore
    chats: ChatRepository
    card: rules.RateCard

    def on_status(self, update: StatusUpdate, landed: dict | None = None) -> dict | None:
        """The entry a status wrote to the ledger, or None when it prices nothing new. `landed`: the
        message as the status's own write returned it (`MessageStore.apply_status`), which spares
        reading it again; without it the message is looked up."""
        if not update.pricing and update.status not in DELIVERED:
            return None
        item = landed or self._message(update)
        chat_id = update.chat_id or item.get("chat_id")
        if update.pricing:
            charge = rules.charge_from_meta(update.pricing)
        elif item.get("pricing"):
            # Meta priced the message on another status (it prices on one only): that status writes
            # its entry, and its retry if it failed before writing; our rules' estimate would be refused.
            return None
        else:
            if item.get("direction") != OUTBOUND or item.get("source") in (None, Source.UNKNOWN, Source.BUSINESS_APP):
                return None  # not a message of ours: without Meta's word its category is unknown
            chat = self.chats.get(chat_id, consistent=False) if chat_id else None
            at = int(item.get("timestamp") or update.timestamp)
            charge = rules.charge_by_rule(
                is_template=item.get("type") == "template",
                template_category=item.get("template_category"),
                window_open=rules.window_open_at(chat.last_customer_message_at if chat else None, at, CUSTOMER_SERVICE_WINDOW_S),
                free_entry_point=_is_free_entry_point(chat, at),
            )
        wa_id = update.wa_id or item.get("wa_id")
        price = self.card.price(charge, wa_id)
        entry = self._entry(update.phone_number_id, update.message_id, update.timestamp, chat_id, API, charge, price)
        entry["source"] = item.get("source")
        return entry if self.ledger.record(entry) else None

    def on_app_reply(self, message: MessageRecord) -> dict | None:
        """A reply from the Business App: free, and priced as if the API had sent it (the entry
        written, None when the ledger held it already)."""
        chat = self.chats.get(message.chat_id, consistent=False) if message.chat_id else None
        window_open = rules.window_open_at(chat.last_customer_message_at if chat else None, message.timestamp,
                                           CUSTOMER_SERVICE_WINDOW_S)
        free = rules.Charge(BUSINESS_APP, False, rules.FREE_BUSINESS_APP, rules.RULE)
        entry = self._entry(message.phone_number_id, message.id, message.timestamp, message.chat_id, BUSINESS_APP,
                            free, self.card.price(free, message.wa_id))
        as_api = rules.charge_if_sent_by_api(window_open, self.card.app_reply_outside_window_category)
        entry.update({
            "window_open": window_open,
            "if_sent_by_api_category": as_api.category,
            "if_sent_by_api_price": self.card.price(as_api, message.wa_id).amount,
        })
        return entry if self.ledger.record(entry) else None

    def _message(self, update: StatusUpdate) -> dict:
        """The message a status is about: ours, named by the callback data the sender attached once
        it carries this wamid; otherwise the item under the wamid, the message it links to, or ours
        found in the chat by the wamid."""
        ours = update.callback_data
        if ours and ours.startswith(OUTBOUND_ID_PREFIX):
            item = self.messages.get(ours) or {}
            if item.get("wamid") == update.message_id and item.get("phone_number_id") == update.phone_number_id:
                return item
        item = self.messages.get(update.message_id) or {}
        if item.get("link_to"):
            item = self.messages.get(item["link_to"]) or {}
        if not item and update.chat_id:  # no callback data, and no item under the wamid
            item = self.messages.sent_as(update.chat_id, update.message_id) or {}
        return item

    def _entry(self, number: str, message_id: str, at: int, chat_id: str | None, origin: str,
               charge: rules.Charge, price: rules.Price) -> dict:
        return {
            "phone_number_id": number,
            "message_id": message_id,
            "at": int(at),
            "day": _day(at),
            "chat_id": chat_id or None,
            "origin": origin,
            "category": charge.category,
            "billable": charge.billable,
            "pricing_type": charge.pricing_type,
            "pricing_model": charge.pricing_model,
            "basis": charge.basis,
            "market": price.market,
            "country": price.country,
            "country_known": price.country_known,
            "price": price.amount,
            "currency": self.card.currency,
            "rate_card": self.card.version,
        }


# The ingest function's metric of a category's cost (the dashboard reads these names).
COST_METRIC_CATEGORIES = (rules.MARKETING, rules.UTILITY, rules.AUTHENTICATION, rules.SERVICE)


def cost_metric(category: str) -> str:
    known = category if category in COST_METRIC_CATEGORIES else "other"
    return f"MessageCost{known.title()}"


def cost_by_category(entries) -> dict[str, Decimal]:
    """What newly written entries charge, by category (the ingest function's metrics)."""
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for entry in entries:
        if entry and entry.get("origin") == API:
            spent[entry["category"]] += entry["price"]
    return dict(spent)


class CostReportError(ValueError):
    """A report asked for something it cannot be (a bad period or grouping); the message says what."""


MAX_PERIOD_S = 93 * 24 * 3600  # a quarter
EARLIEST, LATEST = 2000, 2999  # a report's bounds: anything else is a typo


def parse_period(start: str, end: str | None, now: float | None = None) -> tuple[int, int]:
    """`from` and `to` as ISO dates or date-times (UTC when no zone): [start, end) in epoch seconds.
    A date as `to` includes that whole day. `to` defaults to now."""
    begin = _instant(start, "from")
    if end:
        finish = _instant(end, "to")
        if len(end) == 10:
            finish += 24 * 3600
    else:
        finish = int(now if now is not None else time.time()) + 1
    if finish <= begin:
        raise CostReportError("to: must be after from")
    if finish - begin > MAX_PERIOD_S:
        raise CostReportError("to: a report covers at most 93 days")
    return begin, finish


def _instant(text: str, name: str) -> int:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CostReportError(f"{name}: not an ISO 8601 date or date-time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if not EARLIEST <= value.year <= LATEST:
        raise CostReportError(f"{name}: must be between the years {EARLIEST} and {LATEST}")
    return int(value.timestamp())


def _money(amount: Decimal) -> float:
    return float(round(amount, 6))


class _Tally:
    def __init__(self) -> None:
        self.messages = 0
        self.billable = 0
        self.cost = Decimal(0)
        self.app_messages = 0
        self.if_sent_by_api = Decimal(0)
        self.unknown_country = 0
        self.estimated = 0  # priced by our rules, without Meta's word

    def add(self, entry: dict) -> None:
        if entry.get("origin") == BUSINESS_APP:
            self.app_messages += 1
            self.if_sent_by_api += Decimal(entry.get("if_sent_by_api_price") or 0)
            return
        self.messages += 1
        self.billable += 1 if entry.get("billable") else 0
        self.cost += Decimal(entry.get("price") or 0)
        self.estimated += 1 if entry.get("basis") == rules.RULE else 0
        if entry.get("billable") and not entry.get("country_known", True):
            self.unknown_country += 1

    def as_json(self) -> dict:
        return {
            "messages": self.messages,
            "billable_messages": self.billable,
            "cost": _money(self.cost),
            "estimated_messages": self.estimated,
            "unknown_country_messages": self.unknown_country,
            "app_messages": self.app_messages,
            "app_messages_if_sent_by_api": _money(self.if_sent_by_api),
        }


def report(ledger: CostLedger, numbers: list[str], start: int, end: int, group_by: str, card: rules.RateCard) -> dict:
    """The period's costs for these numbers, grouped; the headline `app_messages_if_sent_by_api`."""
    if group_by not in GROUPINGS:
        raise CostReportError(f"group_by: must be one of {', '.join(GROUPINGS)}")
    total, groups = _Tally(), defaultdict(_Tally)
    app_by_category: dict[str, dict] = defaultdict(lambda: {"messages": 0, "cost": Decimal(0)})
    complete, currencies, versions = True, set(), set()
    budget = REPORT_LIMIT
    for number in sorted(set(numbers)):
        entries, more = ledger.between(number, start, end, budget)
        complete = complete and not more
        budget -= len(entries)
        for entry in entries:
            key = {"category": entry.get("category"), "day": entry.get("day"), "number": number}[group_by]
            groups[key].add(entry)
            total.add(entry)
            currencies.add(entry.get("currency"))
            versions.add(entry.get("rate_card"))
            if entry.get("origin") == BUSINESS_APP:
                bucket = app_by_category[entry.get("if_sent_by_api_category") or rules.UNKNOWN]
                bucket["messages"] += 1
                bucket["cost"] += Decimal(entry.get("if_sent_by_api_price") or 0)
        if budget <= 0:
            complete = False
            break
    return {
        "numbers": sorted(set(numbers)),
        "from": datetime.fromtimestamp(start, timezone.utc).isoformat().replace("+00:00", "Z"),
        "to": datetime.fromtimestamp(end, timezone.utc).isoformat().replace("+00:00", "Z"),
        "group_by": group_by,
        "currency": (sorted(c for c in currencies if c) or [card.currency])[0],
        "rate_card": {"version": card.version, "source": card.source, "retrieved": card.retrieved,
                      "versions_in_period": sorted(v for v in versions if v)},
        "complete": complete,
        "totals": total.as_json(),
        "app_messages_if_sent_by_api": _money(total.if_sent_by_api),
        "app_messages_if_sent_by_api_by_category": {
            category: {"messages": v["messages"], "cost": _money(v["cost"])} for category, v in sorted(app_by_category.items())
        },
        "groups": [{"key": key, **tally.as_json()} for key, tally in sorted(groups.items(), key=lambda kv: str(kv[0]))],
    }
