"""The console's costs view in Chromium against local mode: the chart of what Meta charged beside
what the phone app's replies would have cost through the API, its figures for screen readers, the
groupings, Thai, and axe-core."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, open_page, screenshot
from tests.browser.test_console import NUMBER, call, envelope, phone_app_writes, sign_in, sign_in_in_thai
from tests.e2e.harness import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def delivered_with_pricing(local, wa_id: str, category: str, paid: bool) -> None:
    pricing = {"billable": paid, "pricing_model": "PMP", "category": category, "type": "regular" if paid else "free_customer_service"}
    status = {"id": f"wamid.{uuid.uuid4().hex}", "status": "delivered", "timestamp": str(int(time.time())),
              "recipient_id": wa_id, "pricing": pricing}
    assert local.post_webhook(envelope("messages", {"statuses": [status]})).status == 200


def ledger_totals(local) -> dict:
    today = time.strftime("%Y-%m-%d", time.gmtime())
    status, body = call(local, "GET", f"/costs?phone_number_id={NUMBER}&from={today}")
    return body.get("totals", {}) if status == 200 else {}


def traffic(local) -> None:
    """A paid marketing template, a free utility one, and a phone-app reply to a customer who never wrote;
    returns once ingest has priced them all."""
    before = ledger_totals(local)
    us, india = "1555" + str(uuid.uuid4().int)[:7], "9198" + str(uuid.uuid4().int)[:8]
    delivered_with_pricing(local, us, "marketing", True)
    delivered_with_pricing(local, us, "utility", False)
    phone_app_writes(local, india, "We have your order ready.")  # never wrote: a template through the API
    wait_until(lambda: ledger_totals(local).get("messages", 0) >= before.get("messages", 0) + 2
               and ledger_totals(local).get("app_messages", 0) >= before.get("app_messages", 0) + 1, timeout=30)


def test_the_costs_view_charts_the_ledger_and_is_accessible(page, local):
    traffic(local)
    sign_in(page)
    page.get_by_role("link", name="Costs").click()
    expect(page.get_by_role("heading", name="What messages cost")).to_be_visible()
    expect(page.locator("[data-kpi=cost] .kpi-value")).not_to_have_text("$0.00", timeout=15_000)
    chart = page.get_by_role("img", name="Cost by Category")
    expect(chart).to_be_visible()
    assert chart.locator("rect").count() >= 4  # two series per group
    rows = page.locator("table caption", has_text="Cost by Category").locator("xpath=..").locator("tbody tr")
    figures = {row.locator("th").inner_text(): [td.inner_text() for td in row.locator("td").all()] for row in rows.all()}
    assert figures["Marketing"][1] != "0"  # billable marketing messages, read as a screen reader would
    assert "0.0014" in figures["Phone app"][2]  # a utility template to India, had the API sent the reply
    expect(page.locator("[data-kpi=app] .kpi-value")).to_contain_text("0.0014")
    assert_accessible(page, "costs")
    screenshot(page, "costs")
    page.get_by_label("Grouped by").select_option(label="Day")
    expect(page.get_by_role("img", name="Cost by Day")).to_be_visible()
    page.get_by_label("Grouped by").select_option(label="Number")
    expect(page.locator("table caption", has_text="Cost by Number").locator("xpath=..").locator("tbody th").first).to_have_text(NUMBER)


def test_an_agent_is_told_costs_are_for_supervisors(browser, local):
    page = open_page(browser, local)
    try:
        sign_in(page, agent="ana", token="local-agent-ana")
        page.get_by_role("link", name="Costs").click()
        expect(page.get_by_text("Costs are for supervisors and admins.")).to_be_visible()
    finally:
        page.context.close()


def test_the_costs_view_in_thai(browser, local):
    page = open_page(browser, local, locale="th-TH")
    try:
        traffic(local)
        page.goto("/")
        sign_in_in_thai(page)
        page.get_by_role("link", name="ค่าใช้จ่าย").click()
        expect(page.get_by_role("heading", name="ค่าใช้จ่ายของข้อความ")).to_be_visible()
        expect(page.get_by_role("img", name="ค่าใช้จ่ายตามประเภท")).to_be_visible()
        assert_accessible(page, "costs-th")
        assert page.problems == []
    finally:
        page.context.close()
