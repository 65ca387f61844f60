"""What a message costs: Meta's per-message pricing (since 2025-07-01) as pure rules.

Meta charges for a template when it is delivered, by the template's category and the recipient's
market (the calling code of the phone number). Free: service (free-form) replies, which are only
possible inside the customer-service window; utility templates inside an open window; everything
inside a 72 h free entry point; and everything sent from the WhatsApp Business App.

The status webhook's `pricing` object is Meta's own word and wins; without it (older API versions,
a status that carried none) the same rules are applied to what we know of the message. Prices come
from a rate card (a versioned document: coexist/pricing/), never from code, so a new card or a
change of rules (Meta may meter free-form messages some day) is a setting, not a release.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

MARKETING = "marketing"
UTILITY = "utility"
AUTHENTICATION = "authentication"
SERVICE = "service"
UNKNOWN = "unknown"  # a template whose category we never learnt

REGULAR = "regular"
FREE_CUSTOMER_SERVICE = "free_customer_service"
FREE_ENTRY_POINT = "free_entry_point"
FREE_BUSINESS_APP = "free_business_app"  # ours: Meta never bills what the phone sends

META = "meta"  # the status webhook's pricing object
RULE = "rule"  # our reading of Meta's rules, when the webhook said nothing

ZERO = Decimal("0")


class RateCardError(ValueError):
    """The rate card document is not usable; the message names the field."""


@dataclass(frozen=True)
class Charge:
    """How Meta prices one delivered message (before the market's rate is applied)."""

    category: str
    billable: bool
    pricing_type: str
    basis: str  # META or RULE
    pricing_model: str | None = None


def charge_from_meta(pricing: dict) -> Charge:
    """Meta's `pricing{billable, pricing_model, type, category}`: `type` says free or paid since
    2025-07-01; `billable` (deprecated) is the fallback; a free category is free either way."""
    category = str(pricing.get("category") or UNKNOWN).lower()
    pricing_type = pricing.get("type")
    if pricing_type:
        billable = pricing_type == REGULAR
    elif pricing.get("billable") is not None:
        billable = bool(pricing["billable"])
        pricing_type = REGULAR if billable else FREE_CUSTOMER_SERVICE
    else:
        billable = category not in (SERVICE, "referral_conversion")
        pricing_type = REGULAR if billable else FREE_CUSTOMER_SERVICE
    return Charge(category, billable, pricing_type, META, pricing.get("pricing_model"))


def charge_by_rule(*, is_template: bool, template_category: str | None, window_open: bool | None,
                   free_entry_point: bool) -> Charge:
    """Our reading of the rules when Meta's word is missing.

    `window_open` is whether the customer-service window was open when the message went out; None
    when it cannot be told (a utility template is then counted as billable: the estimate errs high).
    """
    category = (template_category or UNKNOWN).lower() if is_template else SERVICE
    if free_entry_point:
        return Charge(category, False, FREE_ENTRY_POINT, RULE)
    if not is_template:
        return Charge(SERVICE, False, FREE_CUSTOMER_SERVICE, RULE)
    if category == UTILITY and window_open:
        return Charge(category, False, FREE_CUSTOMER_SERVICE, RULE)
    return Charge(category, True, REGULAR, RULE)


def charge_if_sent_by_api(window_open: bool | None, outside_window_category: str) -> Charge:
    """A reply sent from the Business App, priced as if the API had sent it: inside the window a
    free-form reply (free); outside it the API may only send a template, of the card's category."""
    if window_open:
        return Charge(SERVICE, False, FREE_CUSTOMER_SERVICE, RULE)
    return Charge(outside_window_category, True, REGULAR, RULE)


def window_open_at(last_customer_message_at: int | None, at: int, window_s: int) -> bool | None:
    """Was the window open at `at`, judging by the customer's latest message? None when that message
    came after `at` (the one before it is not at hand), so the answer cannot be told."""
    if last_customer_message_at is None:
        return False
    if last_customer_message_at > at:
        return None
    return at < last_customer_message_at + window_s


@dataclass(frozen=True)
class Market:
    name: str
    country: str | None  # ISO 3166 alpha-2; None for the card's "other" market
    calling_codes: tuple[str, ...]
    rates: dict[str, Decimal]


@dataclass(frozen=True)
class Price:
    amount: Decimal
    market: str
    country: str | None
    country_known: bool  # False: no phone number (a BSUID-only customer); priced at the "other" rate


@dataclass(frozen=True)
class RateCard:
    version: str
    currency: str
    source: str
    retrieved: str
    markets: tuple[Market, ...]
    other: Market
    free_categories: frozenset[str]
    category_aliases: dict[str, str]
    app_reply_outside_window_category: str

    @classmethod
    def from_document(cls, document: dict) -> "RateCard":
        if not isinstance(document, dict):
            raise RateCardError("rate card: must be a JSON object")
        for name in ("version", "currency", "source", "retrieved", "markets", "other"):
            if not document.get(name):
                raise RateCardError(f"rate card: {name} is missing")
        markets = tuple(_market(m, f"markets[{i}]") for i, m in enumerate(document["markets"]))
        codes = [code for market in markets for code in market.calling_codes]
        if len(codes) != len(set(codes)):
            raise RateCardError("rate card: a calling code is listed under two markets")
        return cls(
            version=str(document["version"]),
            currency=str(document["currency"]),
            source=str(document["source"]),
            retrieved=str(document["retrieved"]),
            markets=markets,
            other=_market({"name": "Other", **document["other"], "calling_codes": []}, "other", country=False),
            free_categories=frozenset(document.get("free_categories", [SERVICE])),
            category_aliases=dict(document.get("category_aliases", {})),
            app_reply_outside_window_category=str(document.get("app_reply_outside_window_category", UTILITY)),
        )

    def market_of(self, wa_id: str | None) -> Market | None:
        """The market of a phone number (digits, country code first): longest calling code wins."""
        digits = "".join(ch for ch in (wa_id or "") if ch.isdigit())
        if not digits:
            return None
        best = None
        for market in self.markets:
            for code in market.calling_codes:
                if digits.startswith(code) and (best is None or len(code) > len(best[0])):
                    best = (code, market)
        return best[1] if best else self.other

    def price(self, charge: Charge, wa_id: str | None) -> Price:
        market = self.market_of(wa_id)
        known = market is not None
        market = market or self.other
        if not charge.billable or charge.category in self.free_categories:
            amount = ZERO
        else:
            # A category the card prices itself (authentication_international, say), else its parent's rate.
            category = charge.category if charge.category in market.rates else self.category_aliases.get(charge.category, charge.category)
            amount = market.rates.get(category, self.other.rates.get(category, ZERO))
        return Price(amount, market.name, market.country, known)


def _market(document: dict, where: str, country: bool = True) -> Market:
    if not isinstance(document, dict):
        raise RateCardError(f"rate card: {where} must be an object")
    rates = document.get("rates")
    if not isinstance(rates, dict) or not rates:
        raise RateCardError(f"rate card: {where}.rates is missing")
    parsed = {}
    for category, value in rates.items():
        try:
            parsed[str(category)] = Decimal(str(value))
        except InvalidOperation:
            raise RateCardError(f"rate card: {where}.rates.{category} is not a number") from None
        if parsed[str(category)] < 0:
            raise RateCardError(f"rate card: {where}.rates.{category} is negative")
    codes = tuple(str(c) for c in document.get("calling_codes", []))
    if country and (not codes or not all(c.isdigit() for c in codes)):
        raise RateCardError(f"rate card: {where}.calling_codes must be digits")
    if country and not document.get("country"):
        raise RateCardError(f"rate card: {where}.country is missing")
    return Market(str(document.get("name") or document.get("country")), document.get("country") if country else None, codes, parsed)
