"""The agent console in Chromium against local mode: sign in, the live inbox, a conversation from
the customer's first message to the survey, the phone app taking over, templates outside the
window, the numbers page, keyboard-only use, Thai, and axe-core on every screen."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_accessible, open_page, screenshot
from tests.e2e.harness import API_TOKEN, LocalMode, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

NUMBER = "106540352242922"  # the sandbox's coexistence number, listed in console/config.json
DISPLAY = "15550783881"
WABA = "102290129340398"
LIVE_S = 6_000  # the console refreshes every 2 s; the rest is room for a loaded machine


def new_customer() -> str:
    return "1555" + str(uuid.uuid4().int)[:7]


def envelope(field: str, value: dict) -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": DISPLAY, "phone_number_id": NUMBER}, **value}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": field, "value": value}]}]}).encode()


def customer_writes(local: LocalMode, wa_id: str, name: str, text: str | None = None, button: tuple[str, str] | None = None, at: int | None = None) -> None:
    message = {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(at or int(time.time()))}
    if button:
        message.update({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": button[0], "title": button[1]}}})
    else:
        message.update({"type": "text", "text": {"body": text}})
    body = envelope("messages", {"contacts": [{"profile": {"name": name}, "wa_id": wa_id}], "messages": [message]})
    assert local.post_webhook(body).status == 200


def phone_app_writes(local: LocalMode, wa_id: str, text: str) -> None:
    echo = {"from": DISPLAY, "to": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}
    assert local.post_webhook(envelope("smb_message_echoes", {"message_echoes": [echo]})).status == 200


def call(local: LocalMode, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    reply = local.request(method, "/api" + path, json.dumps(body).encode() if body is not None else None, headers)
    return reply.status, reply.json()


def chat(local: LocalMode, wa_id: str) -> dict:
    """The customer's chat, found by its phone number (chat ids are opaque)."""
    chat_id = local.chat_id_of(NUMBER, wa_id)
    if not chat_id:
        return {}
    status, body = call(local, "GET", f"/chats/{chat_id}")
    return body if status == 200 else {}


def sign_in(page, agent: str = "ana", token: str = API_TOKEN) -> None:
    page.goto("/")
    page.get_by_label("Access token").fill(token)
    page.get_by_label("Agent ID").fill(agent)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Chats")).to_be_visible()


def sign_in_in_thai(page, agent: str = "ana", token: str = API_TOKEN) -> None:
    """The sign-in form as a Thai browser shows it (the page already open)."""
    page.get_by_label("โทเคนเข้าใช้งาน").fill(token)
    page.get_by_label("รหัสเจ้าหน้าที่").fill(agent)
    page.get_by_role("button", name="เข้าสู่ระบบ").click()
    expect(page.get_by_role("heading", name="แชท")).to_be_visible()


def open_chat(page, name: str) -> None:
    page.locator(".chat-item", has_text=name).click()
    expect(page.get_by_role("heading", name=name, level=2)).to_be_visible()


def redrawn_after(page, selector: str, change) -> None:
    """Make `change`, then wait until the element at `selector` is one drawn anew (a live update
    replaced it), so what a test checks next is the redraw's outcome, not the moment before it."""
    page.locator(selector).evaluate("(element) => { element.drawnBefore = true; }")
    change()
    page.wait_for_function("(selector) => !document.querySelector(selector)?.drawnBefore", arg=selector, timeout=LIVE_S)


def test_when_the_live_socket_drops_the_console_catches_up_from_the_api_and_reconnects(page, local):
    routes = []

    def through_to_local_mode(route):  # the real socket, with a handle to drop it from here
        route.connect_to_server()
        routes.append(route)

    page.route_web_socket(re.compile(r"/live\?token="), through_to_local_mode)
    sign_in(page)
    body = page.locator("body")
    expect(body).to_have_attribute("data-live", "connected")
    page.evaluate("""() => {
        window.liveStates = [];
        new MutationObserver(() => window.liveStates.push(document.body.dataset.live))
            .observe(document.body, { attributes: true, attributeFilter: ["data-live"] });
    }""")
    wa_id, name = new_customer(), f"Dropped {uuid.uuid4().hex[:6]}"

    routes[-1].close(code=1001, reason="gone away")
    customer_writes(local, wa_id, name, "Are you open on Saturday?")

    expect(page.locator(".chat-item", has_text=name)).to_be_visible(timeout=LIVE_S)  # caught up from the API
    expect(body).to_have_attribute("data-live", "connected", timeout=LIVE_S)  # and the socket is back
    states = page.evaluate("window.liveStates")
    assert states[0] == "polling" and states[-1] == "connected"
    assert len(routes) >= 2  # a new socket was opened


def test_sign_in_refuses_a_wrong_token_and_keeps_the_right_one_in_the_tab_only(page, local):
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    assert_accessible(page, "sign-in")
    screenshot(page, "sign-in")
    page.get_by_label("Access token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="That token was not accepted.")).to_be_visible()

    sign_in(page)
    assert API_TOKEN in (page.evaluate("sessionStorage.getItem('coexist.session')") or "")
    assert API_TOKEN not in json.dumps(page.evaluate("Object.assign({}, localStorage)"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('coexist.session')") is None


def test_a_new_customer_shows_up_live_and_the_filters_and_search_find_them(page, local):
    sockets, pushed = [], []

    def watch(socket):
        sockets.append(socket.url)
        socket.on("framereceived", lambda payload: pushed.append(payload))

    page.on("websocket", watch)
    sign_in(page)
    # Connected to the live channel, the console re-reads only every 15 s on its own: the chat
    # appearing sooner is the channel's doing.
    expect(page.locator("body")).to_have_attribute("data-live", "connected")
    # The same WebSocket protocol as deployed: ws:// on the API's origin, the token in the query.
    assert sockets and all(url.startswith(local.http.replace("http://", "ws://") + "/live?token=") for url in sockets)
    wa_id, name = new_customer(), f"Live {uuid.uuid4().hex[:6]}"
    customer_writes(local, wa_id, name, "Hello, what are your opening hours?")
    item = page.locator(".chat-item", has_text=name)
    expect(item).to_be_visible(timeout=LIVE_S)  # no reload: the console keeps itself current
    # Playwright's sync API hands over the socket's frames only while it is called: wait through it.
    deadline = time.monotonic() + LIVE_S / 1000
    while not any(json.loads(frame).get("type") == "changed" for frame in pushed):
        assert time.monotonic() < deadline, f"no change pushed within {LIVE_S} ms"
        page.wait_for_timeout(250)
    assert_accessible(page, "inbox")
    screenshot(page, "inbox")

    page.get_by_role("button", name="Bot", exact=True).click()
    expect(item).to_be_visible()
    expect(item.locator(".mode")).to_have_text("Bot")
    page.get_by_role("button", name="Closed", exact=True).click()
    expect(item).to_have_count(0)
    page.get_by_role("button", name="All", exact=True).click()
    page.get_by_label("Search by contact name").fill(name.split()[1].upper())
    expect(page.locator(".chat-item")).to_have_count(1)
    expect(item).to_be_visible()


def test_an_agent_accepts_replies_sees_the_ticks_closes_and_gets_the_score(page, local):
    assert call(local, "PUT", "/agents/ana/status", {"status": "available"})[0] == 200
    try:
        sign_in(page, "ana")
        expect(page.get_by_role("button", name=re.compile("Ana Reception · Available"))).to_be_visible()
        wa_id, name = new_customer(), f"Handoff {uuid.uuid4().hex[:6]}"
        customer_writes(local, wa_id, name, "I want to talk to a real person")
        wait_until(lambda: chat(local, wa_id).get("offered_to") == "ana", timeout=30)
        expect(page.locator(".chat-item", has_text=name)).to_be_visible(timeout=LIVE_S)
        open_chat(page, name)
        expect(page.get_by_text("Offered to ana")).to_be_visible(timeout=LIVE_S)
        assert_accessible(page, "conversation")
        page.get_by_role("button", name="Accept").click()
        expect(page.locator(".conversation-head .mode")).to_have_text("Agent")
        expect(page.get_by_text("Assigned to ana").first).to_be_visible()

        page.get_by_label("Message", exact=True).fill("Hi, Ana here. How can I help?")
        page.get_by_label("Message", exact=True).press("Enter")
        reply = page.locator(".message.outbound", has_text="Hi, Ana here.")
        expect(reply).to_be_visible()
        expect(reply.locator(".sender")).to_have_text("ana")
        expect(reply.locator(".badge")).to_have_text("Agent")
        # The sandbox sends Meta's statuses back: the ticks move on their own to read.
        expect(reply).to_have_attribute("data-status", "read", timeout=30_000)
        expect(reply.locator(".tick-label")).to_have_text("Read")
        page.get_by_role("button", name="Quick-reply buttons").click()
        page.get_by_label("Quick-reply buttons (up to 3, one per line)").fill("Monday\nTuesday")
        page.get_by_label("Message", exact=True).fill("Which day suits you?")
        page.get_by_label("Message", exact=True).press("Enter")
        choice = page.locator(".message.outbound", has_text="Which day suits you?")
        expect(choice.locator(".quick-replies li")).to_have_text(["Monday", "Tuesday"])
        expect(choice).to_have_attribute("data-status", re.compile("sent|delivered|read"), timeout=30_000)
        # A document by link; the keyboard on its link stays there when the customer's next message
        # redraws the conversation.
        page.get_by_role("button", name="Attach by link").click()
        page.get_by_label("Media type").select_option("document")
        page.get_by_label("Link (https)").fill("https://example.com/opening-hours.pdf")
        page.get_by_label("Message", exact=True).fill("Our opening hours")
        page.get_by_label("Message", exact=True).press("Enter")
        document = page.locator(".message.outbound a.document", has_text="Our opening hours")
        expect(document).to_have_attribute("href", "https://example.com/opening-hours.pdf")
        document.focus()
        customer_writes(local, wa_id, name, "Thanks, got it")
        expect(page.locator(".message.inbound", has_text="Thanks, got it")).to_be_visible(timeout=LIVE_S)
        expect(document).to_be_focused()
        screenshot(page, "conversation")

        page.get_by_role("button", name="Close", exact=True).click()
        expect(page.locator(".conversation-head .mode")).to_have_text("Closed")
        wait_until(lambda: chat(local, wa_id).get("waiting_for") == "survey", timeout=30)
        customer_writes(local, wa_id, name, button=("csat_3", "😊 Great"))
        expect(page.get_by_text("Satisfaction: 3 / 3")).to_be_visible(timeout=30_000)
        screenshot(page, "conversation-closed")
    finally:
        call(local, "PUT", "/agents/ana/status", {"status": "away"})


def test_a_reply_from_the_phone_app_shows_its_badge_and_the_takeover_banner(page, local):
    sign_in(page, "ben")
    wa_id, name = new_customer(), f"Phone {uuid.uuid4().hex[:6]}"
    customer_writes(local, wa_id, name, "hello")
    wait_until(lambda: chat(local, wa_id).get("waiting_for") == "customer", timeout=30)
    expect(page.locator(".chat-item", has_text=name)).to_be_visible(timeout=LIVE_S)
    open_chat(page, name)
    expect(page.locator(".message .badge", has_text="Bot").first).to_be_visible()
    phone_app_writes(local, wa_id, "Hi, it's Maria at the front desk")
    echo = page.locator(".message", has_text="Maria at the front desk")
    expect(echo).to_be_visible(timeout=LIVE_S)
    expect(echo.locator(".badge")).to_have_text("Phone app")
    expect(page.locator("[data-banner=takeover]")).to_contain_text("Someone answered from the phone app")
    expect(page.locator(".conversation-head .mode")).to_have_text("Phone app")
    assert_accessible(page, "conversation-takeover")
    screenshot(page, "conversation-takeover")


def test_imported_history_edits_and_deletions_show_as_such(page, local):
    wa_id, now = new_customer(), int(time.time())
    history = {"history": [{"metadata": {"phase": 0, "chunk_order": 1, "progress": 40}, "threads": [{"id": wa_id, "messages": [
        {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(now - 7200), "type": "text", "text": {"body": "Do you deliver on Sundays?"}, "history_context": {"status": "READ"}},
        {"from": DISPLAY, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(now - 7100), "type": "text", "text": {"body": "Yes, from 10:00."}, "history_context": {"status": "READ"}},
    ]}]}]}
    assert local.post_webhook(envelope("history", history)).status == 200
    typo, unsent = f"wamid.{uuid.uuid4().hex}", f"wamid.{uuid.uuid4().hex}"

    def echo(message: dict) -> None:
        message = {"from": DISPLAY, "to": wa_id, "timestamp": str(int(time.time())), **message}
        assert local.post_webhook(envelope("smb_message_echoes", {"message_echoes": [message]})).status == 200

    echo({"id": typo, "type": "text", "text": {"body": "See you tomorow"}})
    echo({"id": unsent, "type": "text", "text": {"body": "Wrong chat, sorry"}})
    echo({"id": f"wamid.{uuid.uuid4().hex}", "type": "edit", "edit": {"original_message_id": typo, "message": {"type": "text", "text": {"body": "See you tomorrow"}}}})
    echo({"id": f"wamid.{uuid.uuid4().hex}", "type": "revoke", "revoke": {"original_message_id": unsent}})

    # Taken in first (ingest runs behind the webhook's answer, slower on a loaded machine).
    chat_id = wait_until(lambda: local.chat_id_of(NUMBER, wa_id), timeout=30)

    def taken_in() -> bool:
        texts = {m.get("text") for m in call(local, "GET", f"/chats/{chat_id}/messages?limit=50")[1].get("items", [])}
        return {"Do you deliver on Sundays?", "See you tomorrow"} <= texts

    wait_until(taken_in, timeout=30)
    sign_in(page)
    page.get_by_label("Search by contact name").fill(wa_id)  # the number works as well as a name
    page.locator(f".chat-item[data-chat-id='{chat_id}']").click()
    imported = page.locator(".message", has_text="Do you deliver on Sundays?")
    expect(imported.locator(".badge")).to_have_text("History")
    expect(imported.get_by_text("Imported history")).to_be_visible()
    expect(page.locator(".message", has_text="Yes, from 10:00.").get_by_text("Imported history")).to_be_visible()
    edited = page.locator(".message", has_text="See you tomorrow")
    expect(edited.get_by_text("Edited")).to_be_visible()
    expect(page.get_by_text("Wrong chat, sorry")).to_have_count(0)
    expect(page.get_by_text("Deleted for everyone")).to_be_visible()


def test_a_refused_action_says_why(page, local):
    sign_in(page, "chloe")
    wa_id, name = new_customer(), f"Refused {uuid.uuid4().hex[:6]}"
    customer_writes(local, wa_id, name, "I want to talk to a real person")  # nobody is available: it stays queued
    wait_until(lambda: chat(local, wa_id).get("mode") == "queued", timeout=30)
    expect(page.locator(".chat-item", has_text=name)).to_be_visible(timeout=LIVE_S)
    open_chat(page, name)
    # Role checks answer 403 {"code": "forbidden"}: the console says so in words.
    page.route("**/api/chats/*/accept", lambda route: route.fulfill(
        status=403, content_type="application/json", body=json.dumps({"code": "forbidden", "message": "Only agents accept chats."})))
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("alert")).to_contain_text("You are not allowed to do that. Only agents accept chats.")
    page.unroute("**/api/chats/*/accept")
    # And the workflow's own refusals (409), in the API's words: chloe is away and was offered nothing.
    page.get_by_role("button", name="Accept").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("not offered to you|set yourself available first"))


def test_outside_the_window_only_an_approved_template_can_be_sent(page, local):
    sign_in(page)
    wa_id, name = new_customer(), f"Template {uuid.uuid4().hex[:6]}"
    customer_writes(local, wa_id, name, "Are you open tomorrow?", at=int(time.time()) - 26 * 3600)
    expect(page.locator(".chat-item", has_text=name)).to_be_visible(timeout=LIVE_S)
    open_chat(page, name)
    expect(page.get_by_text("Window closed: only approved templates can be sent").first).to_be_visible()
    expect(page.get_by_label("Message", exact=True)).to_have_count(0)
    picker = page.get_by_label("Template", exact=True)
    expect(picker).to_be_visible()
    names = picker.locator("option").all_inner_texts()
    assert any(n.startswith("appointment_reminder") for n in names)
    assert not any(n.startswith(("new_feature", "old_offer")) for n in names)  # pending and rejected are not offered
    picker.select_option(label=next(n for n in names if n.startswith("appointment_reminder")))
    page.get_by_label("Parameter 1").fill("Sam")
    page.get_by_label("Parameter 2").fill("Monday at 10:00")
    expect(page.locator("#template-preview")).to_have_text("Hi Sam, your appointment is on Monday at 10:00.")
    assert_accessible(page, "template-picker")
    screenshot(page, "template-picker")
    page.get_by_role("button", name="Send template").click()
    sent = page.locator(".message.outbound", has_text="appointment_reminder")
    expect(sent).to_be_visible()
    expect(sent).to_have_attribute("data-status", re.compile("sent|delivered|read"), timeout=30_000)


def test_the_numbers_page_shows_the_coexistence_state_history_and_phone_app_use(page, local):
    customer_writes(local, new_customer(), f"Card reader {uuid.uuid4().hex[:6]}", "Hello")  # the number is known from its webhooks
    sign_in(page)
    page.get_by_role("link", name="Numbers").click()
    card = page.locator(f"[data-number='{NUMBER}']")
    expect(card).to_be_visible()
    expect(card.locator(".state")).to_have_text(re.compile("Connected|Disconnected|Unknown"))
    expect(card.get_by_role("progressbar", name="History import")).to_be_visible()
    expect(card).to_contain_text("Phone app last used")
    # The page reads its numbers again on every live change; the button the keyboard is on stays focused.
    sync = card.get_by_role("button", name="Sync templates")
    sync.focus()
    redrawn_after(page, f"#sync-templates-{NUMBER}", lambda: customer_writes(local, new_customer(), f"Card reader {uuid.uuid4().hex[:6]}", "Hello"))
    expect(sync).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("templates synced")
    assert_accessible(page, "numbers")
    screenshot(page, "numbers")


def test_the_supervisor_dashboard_charts_the_period(page, local):
    wa_id = new_customer()
    customer_writes(local, wa_id, f"Figures {uuid.uuid4().hex[:6]}", "hello")
    sign_in(page)
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Supervisor dashboard")).to_be_visible()
    for label in ("Waiting in the queue", "First response (median)", "Resolution (median)", "Satisfaction"):
        expect(page.get_by_role("heading", name=label, exact=True)).to_be_visible()
    messages = page.get_by_role("img", name="Messages per day by source")
    expect(messages).to_be_visible()
    assert messages.locator("rect").count() >= 1  # today's customer messages, at least
    today = page.locator("table caption", has_text="Messages per day by source").locator("xpath=..").locator("tbody tr").last
    assert int(today.locator("td").first.inner_text()) >= 1  # the customers' column, read as a screen reader would
    page.get_by_label("Period").select_option(label="Today")
    expect(page.get_by_role("img", name="Satisfaction answers")).to_be_visible()
    assert_accessible(page, "dashboard")
    screenshot(page, "dashboard")


def test_the_main_flow_works_with_the_keyboard_alone(page, local):
    assert call(local, "PUT", "/agents/ben/status", {"status": "available"})[0] == 200
    try:
        wa_id, name = new_customer(), f"Keys {uuid.uuid4().hex[:6]}"
        customer_writes(local, wa_id, name, "Can I speak to someone, please?")
        page.goto("/")
        expect(page.get_by_label("Access token")).to_be_focused()
        page.keyboard.type(API_TOKEN)
        page.keyboard.press("Tab")
        page.keyboard.type("ben")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Chats")).to_be_visible()
        expect(page.locator(".chat-item", has_text=name)).to_be_visible(timeout=LIVE_S)
        wait_until(lambda: chat(local, wa_id).get("offered_to") == "ben", timeout=30)

        def tab_to(selector: str, limit: int = 60) -> None:
            for _ in range(limit):
                page.keyboard.press("Tab")
                if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
                    return
            pytest.fail(f"{selector} is not reachable with Tab")

        tab_to(f".chat-item[data-chat-id='{local.chat_id_of(NUMBER, wa_id)}']")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name=name, level=2)).to_be_visible()
        expect(page.locator("[data-action=accept]")).to_be_visible(timeout=LIVE_S)
        tab_to("[data-action=accept]")
        page.keyboard.press("Enter")
        expect(page.locator(".conversation-head .mode")).to_have_text("Agent")
        tab_to("#composer-text")
        page.keyboard.type("Typed without a mouse")
        page.keyboard.press("Enter")
        expect(page.locator(".message.outbound", has_text="Typed without a mouse")).to_be_visible()
        # Handing the chat on, still by keyboard: the dialog opens on its first field.
        tab_to("[data-action=transfer]", limit=80)
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Transfer this chat")
        expect(dialog).to_be_visible()
        expect(page.get_by_label("To an agent")).to_be_focused()
        page.get_by_label("To an agent").select_option("chloe")
        assert_accessible(page, "transfer dialog")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")  # cancel, then transfer
        expect(page.get_by_role("button", name="Transfer", exact=True).last).to_be_focused()
        page.keyboard.press("Enter")
        expect(dialog).to_have_count(0)
        expect(page.get_by_role("status")).to_contain_text("Done: Transfer")
        wait_until(lambda: chat(local, wa_id).get("assignee") != "ben", timeout=30)
    finally:
        call(local, "PUT", "/agents/ben/status", {"status": "away"})


def test_a_live_update_keeps_the_keyboard_where_it_was(page, local):
    # Live updates redraw the chat list and the conversation's head; the chat or the button the
    # agent is on keeps the focus, so an Enter pressed a moment later still lands on it.
    sign_in(page, "chloe")
    wa_id, name = new_customer(), f"Focus {uuid.uuid4().hex[:6]}"
    customer_writes(local, wa_id, name, "I want to talk to a real person")  # nobody is available: it stays queued
    wait_until(lambda: chat(local, wa_id).get("mode") == "queued", timeout=30)
    item = page.locator(f".chat-item[data-chat-id='{local.chat_id_of(NUMBER, wa_id)}']")
    expect(item).to_be_visible(timeout=LIVE_S)
    item.focus()
    newcomer = f"Newcomer {uuid.uuid4().hex[:6]}"
    customer_writes(local, new_customer(), newcomer, "Hello")
    expect(page.locator(".chat-item", has_text=newcomer)).to_be_visible(timeout=LIVE_S)  # the list was redrawn
    expect(item).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=name, level=2)).to_be_visible()

    accept = page.locator("[data-action=accept]")
    accept.focus()
    # The chat changes: its head is drawn again.
    redrawn_after(page, "[data-action=accept]", lambda: customer_writes(local, wa_id, name, "Is anyone there?"))
    expect(accept).to_be_focused()


def test_a_thai_browser_gets_the_console_in_thai_and_can_switch(browser, local):
    customer_writes(local, new_customer(), "สมชาย ใจดี", "สวัสดีครับ")
    page = open_page(browser, local, locale="th-TH")
    try:
        page.goto("/")
        expect(page.get_by_role("heading", name="เข้าสู่ระบบคอนโซล")).to_be_visible()
        assert page.evaluate("document.documentElement.lang") == "th"
        assert_accessible(page, "sign-in (Thai)")
        screenshot(page, "sign-in-thai")
        sign_in_in_thai(page)
        expect(page.locator(".chat-item").first).to_be_visible(timeout=LIVE_S)
        screenshot(page, "inbox-thai")
        page.get_by_label("ภาษา").select_option("en")
        expect(page.get_by_role("heading", name="Chats")).to_be_visible()
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.problems == []
    finally:
        page.context.close()


def test_a_personal_token_names_its_agent_without_an_agent_id(page, local):
    # The API answers a personal token (local-agent-<id>) for its agent; here the browser's own
    # requests are answered as it would, to check what the console sends and whom it shows.
    seen: list[dict] = []

    def answer(route):
        seen.append({"url": route.request.url, "headers": route.request.headers})
        if "/api/agents" in route.request.url:
            body = {"items": [{"agent_id": "ana", "name": "Ana Reception", "skills": [], "capacity": 3, "status": "away", "active_chats": 0}], "next": None}
        else:
            body = {"items": [], "next": None}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/api/**", answer)
    page.goto("/")
    page.get_by_label("Access token").fill("local-agent-ana")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("Ana Reception · Away"))).to_be_visible()
    expect(page.get_by_role("button", name="Mine")).to_be_visible()  # an agent gets their own filter
    assert seen and all(s["headers"].get("authorization") == "Bearer local-agent-ana" for s in seen)
    assert all("x-agent-id" not in s["headers"] for s in seen)
