"""What a message costs: Meta's pricing object, our rules when it is missing, and the rate card."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from coexist.costs import load_rate_card, parse_period, CostReportError
from coexist.domain.costs import (
    FREE_CUSTOMER_SERVICE,
    FREE_ENTRY_POINT,
    META,
    REGULAR,
    RULE,
    Charge,
    RateCard,
    RateCardError,
    charge_by_rule,
    charge_from_meta,
    charge_if_sent_by_api,
    window_open_at,
)

DAY = 24 * 3600


@pytest.mark.parametrize(
    "pricing, category, billable, pricing_type",
    [
        ({"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}, "marketing", True, REGULAR),
        ({"pricing_model": "PMP", "type": "free_customer_service", "category": "utility"}, "utility", False, FREE_CUSTOMER_SERVICE),
        ({"pricing_model": "PMP", "type": "free_entry_point", "category": "marketing"}, "marketing", False, FREE_ENTRY_POINT),
        # `type` is the word since 2025-07-01, even when the deprecated `billable` disagrees
        ({"billable": True, "type": "free_customer_service", "category": "service"}, "service", False, FREE_CUSTOMER_SERVICE),
        # no `type` (before PMP): the deprecated `billable` decides
        ({"billable": False, "pricing_model": "CBP", "category": "utility"}, "utility", False, FREE_CUSTOMER_SERVICE),
        ({"billable": True, "pricing_model": "CBP", "category": "authentication"}, "authentication", True, REGULAR),
        # neither: a free category is free, a paid one is paid
        ({"category": "service"}, "service", False, FREE_CUSTOMER_SERVICE),
        ({"category": "MARKETING"}, "marketing", True, REGULAR),
    ],
)
def test_meta_pricing_object_is_read_as_meta_means_it(pricing, category, billable, pricing_type):
    charge = charge_from_meta(pricing)
    assert (charge.category, charge.billable, charge.pricing_type, charge.basis) == (category, billable, pricing_type, META)


@pytest.mark.parametrize(
    "is_template, category, window_open, entry_point, expected",
    [
        (False, None, True, False, ("service", False, FREE_CUSTOMER_SERVICE)),  # a free-form reply
        (True, "MARKETING", True, False, ("marketing", True, REGULAR)),  # marketing: always charged
        (True, "AUTHENTICATION", True, False, ("authentication", True, REGULAR)),
        (True, "UTILITY", True, False, ("utility", False, FREE_CUSTOMER_SERVICE)),  # utility in the window: free
        (True, "UTILITY", False, False, ("utility", True, REGULAR)),  # outside: charged
        (True, "UTILITY", None, False, ("utility", True, REGULAR)),  # cannot tell: the estimate errs high
        (True, "MARKETING", False, True, ("marketing", False, FREE_ENTRY_POINT)),  # 72 h free entry point
        (True, None, False, False, ("unknown", True, REGULAR)),
    ],
)
def test_our_rule_when_meta_said_nothing(is_template, category, window_open, entry_point, expected):
    charge = charge_by_rule(is_template=is_template, template_category=category, window_open=window_open,
                            free_entry_point=entry_point)
    assert (charge.category, charge.billable, charge.pricing_type) == expected
    assert charge.basis == RULE


def test_a_phone_reply_would_be_free_inside_the_window_and_a_template_outside():
    assert charge_if_sent_by_api(True, "utility") == Charge("service", False, FREE_CUSTOMER_SERVICE, RULE)
    assert charge_if_sent_by_api(False, "marketing") == Charge("marketing", True, REGULAR, RULE)
    assert charge_if_sent_by_api(None, "utility").billable  # unknown: priced as outside


def test_window_at_a_moment_follows_the_latest_customer_message():
    assert window_open_at(1000, 1000 + DAY - 1, DAY) is True
    assert window_open_at(1000, 1000 + DAY, DAY) is False
    assert window_open_at(None, 5000, DAY) is False  # the customer never wrote
    assert window_open_at(9000, 5000, DAY) is None  # wrote again since: the earlier state is unknown


def test_the_bundled_rate_card_names_its_source_and_prices_the_main_markets():
    card = load_rate_card()
    assert card.version == "2025-07" and card.currency == "USD"
    assert card.source.startswith("https://developers.facebook.com/docs/whatsapp/pricing")
    assert {m.country for m in card.markets} >= {"US", "IN", "BR", "GB", "DE", "ID", "MX", "TH"}
    for market in (*card.markets, card.other):
        assert set(market.rates) >= {"marketing", "utility", "authentication"}
        assert all(rate > 0 for rate in market.rates.values())


def test_price_by_the_recipients_calling_code():
    card = load_rate_card()
    marketing = Charge("marketing", True, REGULAR, META)
    india = card.price(marketing, "919876543210")
    assert (india.country, india.amount, india.country_known) == ("IN", Decimal("0.0118"), True)
    assert card.price(marketing, "+66 81 234 5678").country == "TH"
    assert card.price(marketing, "15551234567").country == "US"
    elsewhere = card.price(marketing, "8613800000000")  # China: not a market of the card
    assert (elsewhere.market, elsewhere.country, elsewhere.amount) == ("Other", None, card.other.rates["marketing"])
    # a customer known only by a BSUID: no calling code; priced at the "other" rate and flagged
    unknown = card.price(marketing, None)
    assert (unknown.country, unknown.country_known, unknown.amount) == (None, False, card.other.rates["marketing"])


def test_free_messages_cost_nothing_and_aliases_take_their_parents_rate():
    card = load_rate_card()
    assert card.price(Charge("service", False, FREE_CUSTOMER_SERVICE, META), "919876543210").amount == 0
    assert card.price(Charge("utility", False, FREE_CUSTOMER_SERVICE, META), "919876543210").amount == 0
    lite = card.price(Charge("marketing_lite", True, REGULAR, META), "5511999999999")
    assert lite.amount == card.price(Charge("marketing", True, REGULAR, META), "5511999999999").amount
    international = Charge("authentication_international", True, REGULAR, META)
    assert card.price(international, "919876543210").amount == card.price(Charge("authentication", True, REGULAR, META), "919876543210").amount
    own = RateCard.from_document(_card(markets=[{"country": "TH", "calling_codes": ["66"],
                                                  "rates": {"authentication": "0.01", "authentication_international": "0.03"}}],
                                       category_aliases={"authentication_international": "authentication"}))
    assert own.price(international, "66812345678").amount == Decimal("0.03")  # the card prices it itself
    # a billable message in a category Meta lists as free (service, if Meta ever meters it) follows the card
    assert card.price(Charge("service", True, REGULAR, META), "15551234567").amount == 0


def _card(**changes) -> dict:
    document = json.loads(json.dumps({
        "version": "test", "currency": "EUR", "source": "https://example.test/rates", "retrieved": "2026-01-01",
        "markets": [{"country": "TH", "calling_codes": ["66"], "rates": {"marketing": "0.05"}}],
        "other": {"rates": {"marketing": "0.07"}},
    }))
    document.update(changes)
    return document


def test_a_deployment_overrides_the_card_with_its_own_document():
    card = load_rate_card(json.dumps(_card()))
    assert (card.version, card.currency) == ("test", "EUR")
    assert card.price(Charge("marketing", True, REGULAR, META), "66812345678").amount == Decimal("0.05")


@pytest.mark.parametrize(
    "document, names",
    [
        (_card(source=""), "source"),
        (_card(markets=[{"country": "TH", "calling_codes": ["66"], "rates": {"marketing": "cheap"}}]), "markets[0].rates.marketing"),
        (_card(markets=[{"country": "TH", "calling_codes": ["+66"], "rates": {"marketing": "1"}}]), "calling_codes"),
        (_card(markets=[{"country": "TH", "calling_codes": ["66"], "rates": {"marketing": "-1"}}]), "negative"),
        (_card(markets=[{"country": "TH", "calling_codes": ["66"], "rates": {"marketing": "1"}},
                        {"country": "XX", "calling_codes": ["66"], "rates": {"marketing": "1"}}]), "two markets"),
        (_card(other={}), "other"),
    ],
)
def test_a_bad_rate_card_is_refused_naming_the_field(document, names):
    with pytest.raises(RateCardError, match=r"rate card: .*" + names.replace("[", r"\[").replace("]", r"\]")):
        RateCard.from_document(document)


def test_an_override_that_is_not_json_is_refused_clearly():
    with pytest.raises(RateCardError, match="COEXIST_RATE_CARD is not JSON"):
        load_rate_card("{not json")


def test_report_period_parsing():
    nov_1 = 1793491200  # 2026-11-01T00:00:00Z
    assert parse_period("2026-11-01", "2026-11-01") == (nov_1, nov_1 + DAY)  # a date as `to`: the whole day
    assert parse_period("2026-11-01T06:00:00Z", "2026-11-01T07:00:00+00:00") == (nov_1 + 6 * 3600, nov_1 + 7 * 3600)
    assert parse_period("2026-11-01T07:00:00+07:00", "2026-11-01T08:00") == (nov_1, nov_1 + 8 * 3600)
    with pytest.raises(CostReportError, match="from: not an ISO 8601"):
        parse_period("yesterday", None)
    with pytest.raises(CostReportError, match="after from"):
        parse_period("2026-11-02", "2026-11-01T00:00:00")
    with pytest.raises(CostReportError, match="between the years"):
        parse_period("9999-12-30", "9999-12-31")
    with pytest.raises(CostReportError, match="93 days"):
        parse_period("2026-01-01", "2026-06-01")
