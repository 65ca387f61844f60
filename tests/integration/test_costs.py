"""The cost ledger over the real handlers and tables: status webhooks (with and without Meta's
pricing) and the Business App's echoes priced into the ledger, then GET /api/costs grouped by
category, day and number, and who may read it."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from coexist import wiring
from coexist.store.costs import CostLedger
from functions.ingest import handler as ingest_function
from tests.conftest import Context, drain_inbound
from tests.integration.helpers import api, deliver, post_webhook
from tests.integration.test_api_access import CALLERS, call, deployed  # noqa: F401 - the fixture
from tests.integration.test_ingest import CUSTOMER, NUMBER, echo, status
from tests.integration.test_outbound import cloud, open_window, post, put_consent, run_sender, seed_templates, template_body  # noqa: F401

US_MARKETING = 0.025  # the bundled card's rates for the test's customers
IN_UTILITY = 0.0014
INDIA_CUSTOMER = "919812345678"
PAID_MARKETING = {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
FREE_UTILITY = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "utility"}


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def costs(group_by: str, number: str | None = NUMBER) -> dict:
    query = f"from={today()}&to={today()}&group_by={group_by}" + (f"&phone_number_id={number}" if number else "")
    code, body = api(f"/api/costs?{query}")
    assert code == 200, body
    return body


def sent_wamids(cloud) -> list[str]:
    return [f"wamid.fake-{i + 1}" for i in range(len(cloud.sent))]


def a_day_of_traffic(aws, cloud) -> None:
    """A customer writes; the API sends a free-form reply, a utility and two marketing templates;
    the phone app answers that customer and one in India who never wrote."""
    now = int(time.time())
    open_window(aws, at=now - 3600)
    seed_templates(aws)
    assert put_consent({"purpose": "marketing", "state": "granted", "note": "signed up"})[0] == 200
    assert post({"type": "text", "text": "Thursday at 10 works."})[0] == 202
    assert post(template_body("appointment_reminder", "Ada", "Thursday"))[0] == 202
    assert post(template_body("spring_sale", "20%"))[0] == 202
    assert post(template_body("spring_sale", "30%"))[0] == 202
    assert run_sender(aws) and len(cloud.sent) == 4
    reply, utility, marketing, marketing_again = sent_wamids(cloud)
    deliver(
        aws,
        status(reply, "delivered", now - 50, recipient_id=CUSTOMER),  # no pricing: our rules (service, free)
        status(utility, "delivered", now - 40, recipient_id=CUSTOMER, pricing=FREE_UTILITY),
        status(marketing, "sent", now - 30, recipient_id=CUSTOMER, pricing=PAID_MARKETING),
        status(marketing, "delivered", now - 29, recipient_id=CUSTOMER),  # Meta priced it already
        status(marketing_again, "read", now - 20, recipient_id=CUSTOMER),  # no pricing: marketing by our rules
        echo("wamid.app-1", now - 10, to=CUSTOMER),  # inside the window: free through the API too
        echo("wamid.app-2", now - 5, to=INDIA_CUSTOMER),  # never wrote: the API would need a utility template
    )


def test_a_day_of_mixed_traffic_grouped_three_ways(aws, cloud):
    a_day_of_traffic(aws, cloud)
    by_category = costs("category")
    groups = {g["key"]: g for g in by_category["groups"]}
    assert set(groups) == {"service", "utility", "marketing", "business_app"}
    assert (groups["marketing"]["messages"], groups["marketing"]["billable_messages"]) == (2, 2)
    assert groups["marketing"]["cost"] == pytest.approx(2 * US_MARKETING)
    assert groups["marketing"]["estimated_messages"] == 1  # the one whose status carried no pricing
    assert (groups["utility"]["billable_messages"], groups["utility"]["cost"]) == (0, 0)  # inside the window
    assert (groups["service"]["billable_messages"], groups["service"]["cost"]) == (0, 0)
    assert (groups["business_app"]["messages"], groups["business_app"]["app_messages"]) == (0, 2)
    totals = by_category["totals"]
    assert (totals["messages"], totals["billable_messages"], totals["app_messages"]) == (4, 2, 2)
    assert totals["cost"] == pytest.approx(2 * US_MARKETING)
    # the headline: the phone's replies priced as API messages (one free reply, one utility template to India)
    assert by_category["app_messages_if_sent_by_api"] == pytest.approx(IN_UTILITY)
    assert by_category["app_messages_if_sent_by_api_by_category"] == {
        "service": {"messages": 1, "cost": 0.0}, "utility": {"messages": 1, "cost": pytest.approx(IN_UTILITY)},
    }
    assert (by_category["currency"], by_category["rate_card"]["version"]) == ("USD", "2025-07")
    assert by_category["rate_card"]["source"].startswith("https://developers.facebook.com/")
    assert by_category["complete"] is True

    [day] = costs("day")["groups"]
    assert (day["key"], day["messages"], day["app_messages"]) == (today(), 4, 2)
    assert day["cost"] == pytest.approx(2 * US_MARKETING)

    by_number = costs("number", number=None)  # an admin, every number
    assert [(g["key"], g["messages"]) for g in by_number["groups"]] == [(NUMBER, 4)]
    assert by_number["numbers"] == [NUMBER]


def test_the_ledger_prices_each_message_once_and_metas_word_replaces_our_estimate(aws, cloud):
    a_day_of_traffic(aws, cloud)
    *_, marketing_again = sent_wamids(cloud)
    ledger = wiring.cost_ledger()
    assert ledger.get(NUMBER, marketing_again)["basis"] == "rule"
    # Meta's pricing for it arrives late (and says it was free: a free entry point)
    late = {"pricing_model": "PMP", "type": "free_entry_point", "category": "marketing"}
    deliver(aws, status(marketing_again, "sent", int(time.time()) - 25, recipient_id=CUSTOMER, pricing=late))
    entry = ledger.get(NUMBER, marketing_again)
    assert (entry["basis"], entry["billable"], entry["price"]) == ("meta", False, 0)
    # and our rules never overwrite Meta's word, nor does a replay change anything
    before = costs("category")
    deliver(aws, status(marketing_again, "read", int(time.time()), recipient_id=CUSTOMER),
            echo("wamid.app-1", int(time.time()) - 10, to=CUSTOMER))
    assert ledger.get(NUMBER, marketing_again)["basis"] == "meta"
    assert costs("category") == before
    groups = {g["key"]: g for g in before["groups"]}
    assert groups["marketing"]["cost"] == pytest.approx(US_MARKETING)


def test_a_priced_status_that_failed_before_its_entry_writes_it_when_retried_and_no_estimate_is_made_meanwhile(aws, cloud, monkeypatch):
    now = int(time.time())
    open_window(aws, at=now - 3600)
    seed_templates(aws)
    assert put_consent({"purpose": "marketing", "state": "granted", "note": "signed up"})[0] == 200
    assert post(template_body("spring_sale", "20%"))[0] == 202
    assert run_sender(aws) and len(cloud.sent) == 1
    [wamid] = sent_wamids(cloud)
    ledger = wiring.cost_ledger()

    # `sent`, which carries Meta's pricing, is stored on the message; the ledger's write then fails.
    assert post_webhook(status(wamid, "sent", now - 30, recipient_id=CUSTOMER, pricing=PAID_MARKETING))["statusCode"] == 200
    [sent] = drain_inbound(aws)
    record = CostLedger.record
    failures = []

    def failing_once(self, entry):
        if not failures:
            failures.append(entry["message_id"])
            raise ConnectionError("the ledger's table did not answer")
        return record(self, entry)

    monkeypatch.setattr(CostLedger, "record", failing_once)
    assert ingest_function.lambda_handler(sent, Context())["batchItemFailures"] == [{"itemIdentifier": sent["Records"][0]["messageId"]}]
    assert failures == [wamid] and ledger.get(NUMBER, wamid) is None

    # Meanwhile `delivered` and `read`: the message carries Meta's pricing, so neither estimates it.
    deliver(aws, status(wamid, "delivered", now - 20, recipient_id=CUSTOMER), status(wamid, "read", now - 10, recipient_id=CUSTOMER))
    assert ledger.get(NUMBER, wamid) is None

    # SQS hands the `sent` record out again (after the later statuses): its entry is written then.
    assert ingest_function.lambda_handler(sent, Context()) == {"batchItemFailures": []}
    entry = ledger.get(NUMBER, wamid)
    assert (entry["basis"], entry["category"], entry["billable"]) == ("meta", "marketing", True)
    assert float(entry["price"]) == pytest.approx(US_MARKETING)
    assert costs("category")["totals"]["billable_messages"] == 1


def test_bad_parameters_are_400_naming_the_problem(aws):
    for query, says in [
        ("from=yesterday", "from"),
        (f"from={today()}&group_by=week", "group_by"),
        (f"from={today()}&to=2020-01-01", "after from"),
        ("from=2026-01-01&to=2026-12-31", "93 days"),
        ("to=2026-01-01", "from"),
    ]:
        code, body = api(f"/api/costs?phone_number_id={NUMBER}&{query}")
        assert (code, body["code"]) == (400, "bad_request"), query
        assert says in body["message"], body


def test_supervisors_and_admins_read_costs_agents_do_not(deployed):
    path = f"/api/costs?phone_number_id={NUMBER}&from={today()}"
    assert call("sue", "GET", path)[0] == 200
    assert call("ada", "GET", path)[0] == 200
    for who in ("ana", "nog"):
        code, body = call(who, "GET", path)
        assert (code, body["code"]) == (403, "forbidden")
    code, body = call("sue", "GET", f"/api/costs?phone_number_id=106540352242999&from={today()}")
    assert (code, body["code"]) == (403, "forbidden")
    # without a number: a supervisor's own numbers
    code, body = call("sue", "GET", f"/api/costs?from={today()}&group_by=number")
    assert code == 200 and body["numbers"] == CALLERS["sue"][1]
    assert call("ana", "GET", f"/api/costs?from={today()}")[0] == 403


def test_the_ingest_function_counts_cost_by_category(aws, cloud, monkeypatch):
    from functions.ingest import handler as ingest_function

    counted: list[tuple[str, float]] = []
    real = ingest_function.metrics.add_metric
    monkeypatch.setattr(ingest_function.metrics, "add_metric",
                        lambda name, unit, value, **kw: (counted.append((name, value)), real(name=name, unit=unit, value=value, **kw)))
    a_day_of_traffic(aws, cloud)
    spent = {}
    for name, value in counted:
        if name.startswith("MessageCost"):
            spent[name] = spent.get(name, 0) + value
    assert spent["MessageCostMarketing"] == pytest.approx(2 * US_MARKETING)
    assert spent.get("MessageCostUtility", 0) == 0
