"""The cost report for a day of mixed traffic, over HTTP in local mode: templates of three categories
and a free-form reply sent through the API to the Meta sandbox (whose status webhooks carry
Meta's pricing), and replies from the phone app (echoes), then GET /api/costs three ways."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

import pytest

from tests.e2e.harness import wait_until
from tests.e2e.test_sending import COEXISTENCE, REMINDER, SALE, WABA, grant_marketing, message, seed_chats, send

pytestmark = pytest.mark.e2e

LOGIN_CODE = {"type": "template", "template": {"name": "login_code", "language": "en_US", "components": [
    {"type": "body", "parameters": [{"type": "text", "text": "482913"}]}]}}
GB = {"marketing": 0.0529, "utility": 0.0220, "authentication": 0.0220}  # the bundled card's UK rates


def uk_customer() -> str:
    return "4477" + str(uuid.uuid4().int)[:8]


def post(local, field: str, value: dict) -> None:
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": COEXISTENCE[1], "phone_number_id": COEXISTENCE[0]}, **value}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": field, "value": value}]}]}).encode()
    assert local.post_webhook(body).status == 200


def customer_writes(local, wa_id: str) -> None:
    post(local, "messages", {"contacts": [{"profile": {"name": "Costs"}, "wa_id": wa_id}], "messages": [
        {"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())), "type": "text", "text": {"body": "hi"}}]})


def phone_app_replies(local, wa_id: str) -> None:
    post(local, "smb_message_echoes", {"message_echoes": [
        {"from": COEXISTENCE[1], "to": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
         "type": "text", "text": {"body": "Sent from the phone"}}]})


def report(local, since: str, group_by: str) -> dict:
    reply = local.api_get(f"/costs?phone_number_id={COEXISTENCE[0]}&from={since}&group_by={group_by}")
    assert reply.status == 200, reply.body[:500]
    return reply.json()


def test_the_cost_report_for_a_day_of_mixed_traffic(local_mode):
    local = local_mode
    since = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    time.sleep(1)  # the period starts strictly before this test's first message
    writer, lapsed_a, lapsed_b, quiet = uk_customer(), uk_customer(), uk_customer(), uk_customer()
    customer_writes(local, writer)
    wait_until(lambda: local.chat_id_of(COEXISTENCE[0], writer), timeout=30)
    chat = local.chat_id_of(COEXISTENCE[0], writer)
    reminded, coded = seed_chats(local, COEXISTENCE, [lapsed_a, lapsed_b])  # their windows are closed
    grant_marketing(local, chat)  # marketing needs the customer's consent

    sent = [
        send(local, chat, {"type": "text", "text": "Happy to help."}),  # a service reply in the window: free
        send(local, chat, SALE),  # marketing: always paid
        send(local, reminded, REMINDER),  # utility outside the window: paid
        send(local, coded, LOGIN_CODE),  # authentication: paid
    ]
    assert [status for status, _ in sent] == [202] * 4, sent
    for (_, accepted), chat_id in zip(sent, [chat, chat, reminded, coded]):
        wait_until(lambda: message(local, chat_id, accepted["id"]).get("status") in ("delivered", "read"), timeout=45)
    phone_app_replies(local, writer)  # inside the customer's window: the API would have replied for free
    phone_app_replies(local, quiet)  # a customer who never wrote: the API would have needed a template

    by_category = wait_until(lambda: (r := report(local, since, "category"))["totals"]["app_messages"] == 2
                             and r["totals"]["billable_messages"] == 3 and r, timeout=30)
    groups = {g["key"]: g for g in by_category["groups"]}
    # The bot answered the customer too: service replies, as free as the agent's.
    service = groups.pop("service")
    assert service["messages"] >= 1 and (service["billable_messages"], service["cost"]) == (0, 0)
    assert {k: (g["messages"], g["billable_messages"]) for k, g in groups.items()} == {
        "marketing": (1, 1), "utility": (1, 1), "authentication": (1, 1), "business_app": (0, 0),
    }
    for category, rate in GB.items():
        assert groups[category]["cost"] == pytest.approx(rate)
    assert groups["business_app"]["app_messages"] == 2
    assert by_category["totals"]["cost"] == pytest.approx(sum(GB.values()))
    assert by_category["totals"]["estimated_messages"] == 0  # the sandbox, like Meta, priced every one
    # The headline: the phone's two replies, had the API sent them (one free, one utility template).
    assert by_category["app_messages_if_sent_by_api"] == pytest.approx(GB["utility"])

    [day] = report(local, since, "day")["groups"]
    assert day["key"] == since[:10]
    assert (day["billable_messages"], day["app_messages"]) == (3, 2) and day["messages"] >= 3 + service["messages"]
    assert day["cost"] == pytest.approx(sum(GB.values()))
    [number] = report(local, since, "number")["groups"]
    assert (number["key"], number["cost"]) == (COEXISTENCE[0], pytest.approx(sum(GB.values())))

    agent = local.api_get(f"/costs?phone_number_id={COEXISTENCE[0]}&from={since}", token="local-agent-ana")
    assert (agent.status, agent.json()["code"]) == (403, "forbidden")  # costs are for supervisors and admins
