"""Every string a request carries has a documented limit, and breaking one is a 400 that says
which, never a 502 from DynamoDB (400 KB items, 2 KB keys); so is a cursor with a wrongly typed value."""

from __future__ import annotations

import base64
import json
import time

import pytest

from functions.api import handler as api_function
from tests.conftest import API_TOKEN, Context, api_event
from tests.integration.helpers import chat_of, deliver
from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message

CHAT = "<chat>"  # in a path or a cursor: the customer's opaque chat id, looked up when the call is made


def _ours(text: str) -> str:
    return text.replace(CHAT, chat_of(NUMBER, CUSTOMER)) if CHAT in text else text


def call(method: str, path: str, body: object = None, headers: dict | None = None) -> tuple[int, dict]:
    path = _ours(path)
    raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
    all_headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", "X-Agent-Id": "ana", **(headers or {})}
    response = api_function.lambda_handler(api_event(method, path, raw, all_headers), Context())
    return response["statusCode"], json.loads(response["body"])


def cursor(key: dict) -> str:
    key = {k: _ours(v) if isinstance(v, str) else v for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.fixture
def inbox(aws):
    deliver(aws, text_message("wamid.limits", int(time.time())))
    return aws


def test_a_cursor_with_a_wrongly_typed_value_is_400(inbox):
    for key, path in (
        ({"phone_number_id": NUMBER, "chat_id": CHAT, "last_message_at": "soon"}, f"/api/chats?phone_number_id={NUMBER}"),
        ({"phone_number_id": NUMBER, "chat_id": 5, "last_message_at": 1}, f"/api/chats?phone_number_id={NUMBER}"),
        ({"id": "x", "chat_id": CHAT, "position": 7}, f"/api/chats/{CHAT}/messages"),
        ({"chat_id": CHAT, "assignee": "ana", "last_message_at": [1]}, "/api/chats?assignee=ana"),
    ):
        code, body = call("GET", f"{path}&cursor={cursor(key)}" if "?" in path else f"{path}?cursor={cursor(key)}")
        assert (code, body["code"]) == (400, "bad_request"), (key, body)


TOO_LONG = [
    ("chat id in the path", "GET", f"/api/chats/{NUMBER}_{'9' * 200}", None, {}),
    ("number in the path", "GET", f"/api/numbers/{'1' * 129}", None, {}),
    ("phone_number_id", "GET", f"/api/chats?phone_number_id={'1' * 129}", None, {}),
    ("assignee", "GET", f"/api/chats?assignee={'a' * 129}", None, {}),
    ("cursor", "GET", f"/api/chats?phone_number_id={NUMBER}&cursor={'A' * 1025}", None, {}),
    ("waba_id", "GET", f"/api/templates?waba_id={'1' * 129}", None, {}),
    ("Idempotency-Key", "POST", f"/api/chats/{CHAT}/messages", {"type": "text", "text": "hi"}, {"Idempotency-Key": "k" * 129}),
    ("X-Agent-Id", "GET", "/api/agents", None, {"X-Agent-Id": "a" * 129}),
    ("body", "POST", f"/api/chats/{CHAT}/messages", {"type": "text", "text": "x" * (64 * 1024)}, {}),
    ("agent name", "POST", "/api/agents", {"agent_id": "ana", "name": "n" * 201}, {}),
    ("agent id", "POST", "/api/agents", {"agent_id": "a" * 129, "name": "Ana"}, {}),
    ("skill", "POST", "/api/agents", {"agent_id": "ana", "name": "Ana", "skills": ["s" * 65]}, {}),
    ("skills", "POST", "/api/agents", {"agent_id": "ana", "name": "Ana", "skills": [f"s{i}" for i in range(51)]}, {}),
    ("numbers", "POST", "/api/agents", {"agent_id": "ana", "name": "Ana", "numbers": [str(i) for i in range(101)]}, {}),
    ("a number", "POST", "/api/agents", {"agent_id": "ana", "name": "Ana", "numbers": ["1" * 129]}, {}),
    ("transfer target", "POST", f"/api/chats/{CHAT}/transfer", {"agent_id": "b" * 129}, {}),
    ("transfer skill", "POST", f"/api/chats/{CHAT}/transfer", {"skill": "s" * 65}, {}),
    ("control characters", "POST", "/api/agents", {"agent_id": "ana\n", "name": "Ana"}, {}),
]


@pytest.mark.parametrize(("what", "method", "path", "body", "headers"), TOO_LONG, ids=[t[0] for t in TOO_LONG])
def test_strings_over_their_limit_are_400(inbox, what, method, path, body, headers):
    code, answer = call(method, path, body, headers)
    assert (code, answer["code"]) == (400, "bad_request"), answer
    assert "at most" in answer["message"] or "characters" in answer["message"]


def test_strings_at_their_limit_are_accepted(inbox):
    code, agent = call("POST", "/api/agents", {"agent_id": "a" * 128, "name": "n" * 200, "skills": ["s" * 64] * 50,
                                               "numbers": [NUMBER] * 100})
    assert code == 201 and agent["numbers"] == [NUMBER]
    assert call("GET", f"/api/chats/{CHAT}")[0] == 200
