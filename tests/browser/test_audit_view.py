"""The console's audit view in Chromium against local mode: an admin reads who did what to which chat,
when and from where, filters it, pages through it on the API's cursor, and finds nothing to edit; an
agent is not offered the view; Thai; axe-core."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, open_page, screenshot
from tests.browser.test_console import NUMBER, customer_writes, new_customer, sign_in, sign_in_in_thai
from tests.e2e.harness import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def as_agent(local, agent: str, path: str) -> int:
    return local.request("GET", "/api" + path, None, {"Authorization": f"Bearer local-agent-{agent}"}).status


def a_chat_two_agents_read(local, ana_reads: int = 1) -> str:
    wa_id = new_customer()
    customer_writes(local, wa_id, "Patient Rivera", "Is my prescription ready?")
    chat_id = wait_until(lambda: local.chat_id_of(NUMBER, wa_id), timeout=30)
    for _ in range(ana_reads):
        assert as_agent(local, "ana", f"/chats/{chat_id}") == 200
    assert as_agent(local, "ben", f"/chats/{chat_id}/messages") == 200
    return chat_id


def rows(page) -> list[dict]:
    return [{"actor": r.get_attribute("data-actor"), "action": r.get_attribute("data-action")}
            for r in page.locator(".audit-table tbody tr").all()]


def test_an_admin_reads_filters_and_pages_the_audit_trail(page, local):
    chat_id = a_chat_two_agents_read(local, ana_reads=26)
    sign_in(page, agent="ada")  # the shared token: an admin
    page.get_by_role("link", name="Audit", exact=True).click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()

    page.get_by_label("Chat ID").fill(chat_id)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("status").filter(has_text="Page 1: 25 entries")).to_be_visible()
    first = rows(page)
    # Newest first: ben's read of the messages after ana's reads of the chat.
    assert first[0] == {"actor": "ben", "action": "read_chat"}
    assert first[1:] == [{"actor": "ana", "action": "read_chat"}] * 24
    row = page.locator(".audit-table tbody tr").first
    expect(row).to_contain_text(chat_id)
    expect(row).to_contain_text("127.0.0.1")  # from where
    # Read-only: nothing in the trail can be edited, removed or acted on.
    assert page.locator(".audit-table").locator("button, input, select, textarea, [contenteditable]").count() == 0
    assert_accessible(page, "audit")
    screenshot(page, "audit")

    page.get_by_role("button", name="Older").click()  # the API's cursor
    expect(page.get_by_role("status").filter(has_text="Page 2")).to_be_visible()
    assert rows(page) == [{"actor": "ana", "action": "read_chat"}] * 2  # ana's first reads, the last page
    expect(page.get_by_role("button", name="Older")).to_be_disabled()
    page.get_by_role("button", name="Newer").click()
    expect(page.get_by_role("status").filter(has_text="Page 1: 25 entries")).to_be_visible()

    page.get_by_label("User").fill("ben")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("status").filter(has_text="Page 1: 1 entry")).to_be_visible()
    assert rows(page) == [{"actor": "ben", "action": "read_chat"}]
    expect(page.locator(".audit-table tbody tr")).to_contain_text("GET /api/chats/")


def test_an_agent_is_not_offered_the_audit_view(browser, local):
    page = open_page(browser, local)
    try:
        a_chat_two_agents_read(local)
        sign_in(page, agent="ana", token="local-agent-ana")
        expect(page.get_by_role("link", name="Costs")).to_be_visible()
        expect(page.get_by_role("link", name="Audit", exact=True)).to_have_count(0)
        page.goto("/#/audit")
        expect(page.get_by_role("heading", name="Chats")).to_be_visible()
        expect(page.get_by_role("heading", name="Audit trail")).to_have_count(0)
        assert as_agent(local, "ana", "/audit") == 403  # and the API refuses it whatever the console does
        assert page.problems == []
    finally:
        page.context.close()


def test_the_audit_view_in_thai(browser, local):
    page = open_page(browser, local, locale="th-TH")
    try:
        a_chat_two_agents_read(local)
        page.goto("/")
        sign_in_in_thai(page)
        page.get_by_role("link", name="บันทึกตรวจสอบ").click()
        expect(page.get_by_role("heading", name="บันทึกการตรวจสอบ")).to_be_visible()
        expect(page.locator(".audit-table tbody tr").first).to_be_visible()
        expect(page.get_by_role("columnheader", name="จากที่ใด")).to_be_visible()
        assert_accessible(page, "audit-th")
        assert page.problems == []
    finally:
        page.context.close()
