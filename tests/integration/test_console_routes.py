"""The console's routes over the real tables: the filtered inbox (modes, names, paging), the OpenAPI
document, and malformed chat ids answered 404 on every chat route."""

from __future__ import annotations

import json
import time

from tests.integration.helpers import API_TOKEN, api, chat_of, deliver
from tests.integration.test_ingest import NUMBER, echo, text_message

NAMES = ["Somchai Jaidee", "Maria Lopez", "Alex Chen", "Mariam Haddad", "Ben Okafor"]


def named(wamid: str, at: int, sender: str, name: str) -> dict:
    payload = text_message(wamid, at, sender=sender)
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = name
    return payload


def seed(aws) -> list[str]:
    customers = [f"1650777{i:04d}" for i in range(len(NAMES))]
    deliver(aws, *[named(f"wamid.f{i}", 1_800_000_000 + i * 60, c, n) for i, (c, n) in enumerate(zip(customers, NAMES))])
    return customers


def listing(query: str) -> list[dict]:
    items, cursor = [], None
    while True:
        code, body = api(f"/api/inbox?phone_number_id={NUMBER}&{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert code == 200, body
        items += body["items"]
        cursor = body["next"]
        if not cursor:
            return items


def test_without_a_filter_it_is_the_inbox_newest_first_across_pages(aws):
    customers = seed(aws)
    assert [c["wa_id"] for c in listing("limit=2")] == list(reversed(customers))


def test_a_mode_keeps_only_its_chats_page_by_page(aws):
    customers = seed(aws)
    # A reply from the phone app moves that chat to mode `app`; the others stay with the bot.
    deliver(aws, echo("wamid.echo1", 1_800_000_500, to=customers[1]))
    app = listing("mode=app&limit=1")
    assert [c["wa_id"] for c in app] == [customers[1]] and app[0]["mode"] == "app"
    bot = listing("mode=bot&limit=2")
    assert [c["wa_id"] for c in bot] == [c for c in reversed(customers) if c != customers[1]]
    assert listing("mode=queued") == []


def test_search_matches_the_contact_name_ignoring_case_or_the_number(aws):
    customers = seed(aws)
    assert [c["contact_name"] for c in listing("q=MARI&limit=1")] == ["Mariam Haddad", "Maria Lopez"]
    assert [c["wa_id"] for c in listing(f"q={customers[4][-6:]}")] == [customers[4]]
    assert listing("q=nobody") == []


def test_bad_filters_are_400_and_the_route_needs_the_token(aws):
    seed(aws)
    assert api(f"/api/inbox?phone_number_id={NUMBER}&mode=sleeping")[0] == 400
    assert api("/api/inbox?mode=bot")[0] == 400
    assert api(f"/api/inbox?phone_number_id={NUMBER}&q=" + "x" * 101)[0] == 400
    other_listing = api("/api/inbox?phone_number_id=999&limit=1")[1]["next"]
    assert other_listing is None
    first = api(f"/api/inbox?phone_number_id={NUMBER}&limit=1")[1]["next"]
    assert api(f"/api/inbox?phone_number_id=999&cursor={first}")[0] == 400
    assert api(f"/api/inbox?phone_number_id={NUMBER}", token=None)[0] == 401


def test_the_openapi_document_is_valid_and_describes_every_route(aws):
    from openapi_spec_validator import validate

    code, document = api("/api/openapi.json")
    assert code == 200
    validate(document)  # a valid OpenAPI 3 document
    assert document["openapi"].startswith("3.") and document["info"]["title"] == "Coexist agent API"
    documented = {(path, method) for path, methods in document["paths"].items() for method in methods}
    every_route = {
        ("/api/chats", "get"), ("/api/chats/{chat_id}", "get"), ("/api/chats/{chat_id}/messages", "get"),
        ("/api/chats/{chat_id}/messages", "post"), ("/api/chats/{chat_id}/accept", "post"),
        ("/api/chats/{chat_id}/release", "post"), ("/api/chats/{chat_id}/close", "post"),
        ("/api/chats/{chat_id}/transfer", "post"), ("/api/agents", "get"), ("/api/agents", "post"),
        ("/api/agents/{agent_id}/status", "put"), ("/api/templates", "get"), ("/api/templates/sync", "post"),
        ("/api/numbers/{phone_number_id}", "get"), ("/api/inbox", "get"),
    }
    assert every_route <= documented, every_route - documented
    inbox = document["paths"]["/api/inbox"]["get"]
    assert {p["name"]: p["required"] for p in inbox["parameters"]} == {"phone_number_id": True, "mode": False, "q": False, "limit": False, "cursor": False}
    assert inbox["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatPage")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_openapi_document_needs_the_token_like_the_rest(aws):
    assert api("/api/openapi.json", token=None)[0] == 401


def test_a_malformed_chat_id_is_404_on_every_chat_route(aws):
    from functions.api import handler as api_function
    from tests.conftest import Context, api_event

    headers = {"Authorization": "Bearer " + API_TOKEN, "X-Agent-Id": "ana", "Content-Type": "application/json"}
    for method, path in [("POST", "/api/chats/0/accept"), ("POST", "/api/chats/_1/release"), ("POST", "/api/chats/x_1/close"),
                         ("POST", "/api/chats/0/transfer"), ("POST", "/api/chats/0/messages"), ("GET", "/api/chats/0")]:
        response = api_function.lambda_handler(api_event(method, path, headers=headers, body=b'{"agent_id": "ben"}'), Context())
        assert (response["statusCode"], json.loads(response["body"])["code"]) == (404, "not_found"), (method, path)
    response = api_function.lambda_handler(api_event("POST", "/api/chats/0/accept", headers={}), Context())
    assert response["statusCode"] == 401  # who asks is checked first


def test_the_dashboard_counts_the_queue_response_times_satisfaction_and_messages_by_source(aws):
    from coexist import wiring

    now = int(time.time())
    customers = seed_recent(aws, now)
    chats = wiring.inbox().chats.table
    # One chat waits in the queue for 10 minutes; one was answered 2 minutes after it was queued
    # and closed 20 minutes after, with a score of 3; another scored 1.
    update(chats, customers[0], mode="queued", queued_at=now - 600)
    update(chats, customers[1], mode="closed", queued_at=now - 3000, first_human_reply_at=now - 2880, closed_at=now - 1800, satisfaction_score=3)
    update(chats, customers[2], mode="closed", satisfaction_score=1, closed_at=now - 60)
    code, body = api(f"/api/dashboard?phone_number_id={NUMBER}&days=2")
    assert code == 200, body
    assert body["queue"]["length"] == 1 and 600 <= body["queue"]["waiting"]["max_s"] < 700
    assert body["first_response"] == {"count": 1, "median_s": 120, "p90_s": 120, "max_s": 120}
    assert body["resolution"]["median_s"] == 1200
    assert body["satisfaction"] == {"responses": 2, "average": 2.0, "distribution": {"1": 1, "2": 0, "3": 1}}
    days = body["messages_per_day"]
    assert len(days) == 2 and days[-1]["day"] == time.strftime("%Y-%m-%d", time.gmtime(now))
    total = {source: sum(d[source] for d in days) for source in ("customer", "business_app", "bot", "history")}
    assert total == {"customer": 3, "business_app": 1, "bot": 0, "history": 0}  # the 40-day-old message is not counted
    assert body["chats_considered"] == 3 and body["sampled"] is False
    assert api(f"/api/dashboard?phone_number_id={NUMBER}&days=0")[0] == 400
    assert api("/api/dashboard")[0] == 400


def seed_recent(aws, now: int) -> list[str]:
    customers = [f"1650888{i:04d}" for i in range(3)]
    old = named("wamid.old", now - 40 * 86_400, "16508889999", "Long Ago")  # outside the period: not counted
    deliver(aws, old, *[named(f"wamid.r{i}", now - 100 + i, c, f"Recent {i}") for i, c in enumerate(customers)],
            echo("wamid.recho", now - 50, to=customers[1]))
    return customers


def update(table, wa_id: str, **fields) -> None:
    names = {f"#{k}": k for k in fields}
    table.update_item(
        Key={"chat_id": chat_of(NUMBER, wa_id)},
        UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in fields),
        ExpressionAttributeNames=names, ExpressionAttributeValues={f":{k}": v for k, v in fields.items()},
    )
