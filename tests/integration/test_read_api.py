"""The read API over the real tables: paging, ordering, auth and clear errors."""

from __future__ import annotations

import json

from coexist import wiring
from functions.api import handler as api_function
from tests.conftest import Context, api_event
from tests.integration.helpers import api, deliver, chat_of
from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message


def test_without_or_with_a_wrong_token_is_401(aws):
    for token in (None, "wrong"):
        code, body = api(f"/api/chats?phone_number_id={NUMBER}", token=token)
        assert code == 401 and body["code"] == "unauthorized"
    response = api_function.lambda_handler(api_event("GET", f"/api/chats?phone_number_id={NUMBER}", headers={"Authorization": "Basic abc"}), Context())
    assert response["statusCode"] == 401


def test_cognito_mode_trusts_only_requests_api_gateway_authorised(aws, monkeypatch):
    monkeypatch.setenv("COEXIST_API_AUTH", "cognito")
    wiring.reset()
    event = api_event("GET", f"/api/chats?phone_number_id={NUMBER}")
    assert api_function.lambda_handler(event, Context())["statusCode"] == 401
    event["requestContext"]["authorizer"] = {"claims": {"sub": "agent-1", "token_use": "id"}}
    response = api_function.lambda_handler(event, Context())
    assert response["statusCode"] == 403 and json.loads(response["body"])["code"] == "forbidden"  # in no group
    event["requestContext"]["authorizer"]["claims"]["cognito:groups"] = "admin"
    assert api_function.lambda_handler(event, Context())["statusCode"] == 200


def test_bad_parameters_are_400_with_a_sentence(aws):
    code, body = api("/api/chats")
    assert (code, body["code"]) == (400, "bad_request") and "phone_number_id" in body["message"]
    assert api(f"/api/chats?phone_number_id={NUMBER}&limit=500")[0] == 400
    assert api(f"/api/chats?phone_number_id={NUMBER}&limit=abc")[0] == 400
    assert api(f"/api/chats?phone_number_id={NUMBER}&cursor=garbage")[0] == 400


def test_unknown_chat_number_and_route_are_404(aws):
    assert api(f"/api/chats/c{'z' * 24}")[0] == 404
    assert api(f"/api/chats/c{'z' * 24}/messages")[0] == 404
    assert api(f"/api/chats/{NUMBER}_{CUSTOMER}")[0] == 404  # a phone number never names a chat
    assert api("/api/chats/not-a-chat-id")[0] == 404
    assert api(f"/api/numbers/{NUMBER}")[0] == 404
    assert api("/api/nowhere")[0] == 404


def test_chats_newest_first_across_pages(aws):
    customers = [f"1650555{i:04d}" for i in range(7)]
    deliver(aws, *[text_message(f"wamid.c{i}", 1_800_000_000 + i * 60, sender=c) for i, c in enumerate(customers)])
    seen, cursor = [], None
    while True:
        code, body = api(f"/api/chats?phone_number_id={NUMBER}&limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert code == 200
        seen += [c["wa_id"] for c in body["items"]]
        cursor = body["next"]
        if not cursor:
            break
    assert seen == list(reversed(customers))
    one = api(f"/api/chats?phone_number_id={NUMBER}&limit=1")[1]["items"][0]
    assert set(one) >= {"chat_id", "phone_number_id", "wa_id", "contact_name", "mode", "window_expires_at", "last_message_at"}


def test_messages_oldest_first_across_pages_and_cursor_bound_to_its_chat(aws):
    deliver(aws, *[text_message(f"wamid.m{i}", 1_800_000_000 + i, body=f"m{i}") for i in reversed(range(5))])
    chat_id = chat_of(NUMBER, CUSTOMER)
    first = api(f"/api/chats/{chat_id}/messages?limit=2")[1]
    assert [m["text"] for m in first["items"]] == ["m0", "m1"]
    second = api(f"/api/chats/{chat_id}/messages?limit=2&cursor={first['next']}")[1]
    assert [m["text"] for m in second["items"]] == ["m2", "m3"]
    message = first["items"][0]
    assert set(message) >= {"id", "direction", "source", "type", "text", "timestamp", "status", "errors", "pricing"}
    other = api(f"/api/chats/c{'z' * 24}/messages?cursor={first['next']}")
    assert other[0] == 400


def test_number_view(aws):
    deliver(aws, text_message("wamid.n", 1_800_000_000))
    code, body = api(f"/api/numbers/{NUMBER}")
    assert code == 200
    assert body == {
        "phone_number_id": NUMBER,
        "display_phone_number": "15550783881",
        "waba_id": "102290129340398",
        "coexistence_state": "unknown",
        "coexistence_event": None,
        "coexistence_reason": None,
        "coexistence_changed_at": None,
        "history_sync": {"phase": None, "progress": 0, "chunks": [], "declined": False, "complete": False},
        "last_app_activity_at": None,
        "app_activity": None,  # not known to be in Coexistence: the 14-day rule does not apply
    }
    assert json.dumps(body)
