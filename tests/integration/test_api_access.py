"""Who may do what through the agent API, route by route and role by role, over the real handler
and tables: every refusal is a typed 403, and the allowed calls go through.

Deployed mode (Cognito claims as API Gateway's authorizer passes them) unless a test says otherwise.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from coexist import wiring
from functions.api import handler as api_function
from tests.conftest import API_TOKEN, WABA_ID, Context, api_event
from tests.integration.helpers import chat_of, deliver
from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message

OTHER_NUMBER = "106540352242999"
CHAT = "<chat>"  # in a path: the customer's opaque chat id, looked up when the call is made
FOREIGN_WABA = "999999999999999"
# Each caller: its Cognito groups and, for the agent directory, its numbers.
CALLERS = {
    "ana": ("agent", [NUMBER]),
    "ben": ("agent", [NUMBER]),  # the chat's assignee
    "sue": ("supervisor", [NUMBER]),
    "ada": ("admin", []),
    "zed": ("agent", [OTHER_NUMBER]),  # works on another number only
    "nog": (None, [NUMBER]),  # signed in, in no Coexist group
}


@pytest.fixture
def deployed(aws, monkeypatch):
    monkeypatch.setenv("COEXIST_API_AUTH", "cognito")
    wiring.reset()
    for agent_id, (_, numbers) in CALLERS.items():
        wiring.agents().upsert(agent_id, agent_id.title(), ["general"], 3, numbers)
    deliver(aws, text_message("wamid.access", int(time.time())))
    assign(aws, "ben")
    return aws


def assign(aws, agent_id: str | None) -> None:
    table = aws.dynamodb.Table(aws.env["CHATS_TABLE"])
    key = {"chat_id": chat_of(NUMBER, CUSTOMER)}
    if agent_id:
        table.update_item(Key=key, UpdateExpression="SET assignee = :a, #m = :m", ExpressionAttributeNames={"#m": "mode"},
                          ExpressionAttributeValues={":a": agent_id, ":m": "agent"})
    else:
        table.update_item(Key=key, UpdateExpression="REMOVE assignee")


def _path(path: str) -> str:
    return path.replace(CHAT, chat_of(NUMBER, CUSTOMER)) if CHAT in path else path


def call(who: str, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
    path = _path(path)
    group, _ = CALLERS[who]
    claims = {"sub": f"sub-{who}", "cognito:username": who, "token_use": "id"}
    if group:
        claims["cognito:groups"] = group
    event = api_event(method, path, json.dumps(body).encode() if body is not None else b"",
                      {"Authorization": "eyJ.fake.jwt", "Content-Type": "application/json", **(headers or {})})
    event["requestContext"]["authorizer"] = {"claims": claims}
    response = api_function.lambda_handler(event, Context())
    return response["statusCode"], json.loads(response["body"])


def refused(status_body: tuple[int, dict]) -> bool:
    status, body = status_body
    return status == 403 and body["code"] == "forbidden" and isinstance(body["message"], str) and body["message"]


SEND = {"type": "text", "text": "on my way"}
# route → (method, path, body, the callers refused, the callers allowed)
ROUTES = {
    "list a number's chats": ("GET", f"/api/chats?phone_number_id={NUMBER}", None, {"zed", "nog"}, {"ana", "sue", "ada"}),
    "filter a number's chats": ("GET", f"/api/inbox?phone_number_id={NUMBER}", None, {"zed", "nog"}, {"ana", "sue", "ada"}),
    "read a number's dashboard": ("GET", f"/api/dashboard?phone_number_id={NUMBER}", None, {"ana", "ben", "zed", "nog"}, {"sue", "ada"}),
    "list an agent's chats": ("GET", "/api/chats?assignee=ben", None, {"ana", "zed", "nog"}, {"ben", "sue", "ada"}),
    "read a chat": ("GET", f"/api/chats/{CHAT}", None, {"zed", "nog"}, {"ana", "ben", "sue", "ada"}),
    "read its messages": ("GET", f"/api/chats/{CHAT}/messages", None, {"zed", "nog"}, {"ana", "ben", "sue", "ada"}),
    "send into an assigned chat": ("POST", f"/api/chats/{CHAT}/messages", SEND, {"ana", "zed", "nog"}, {"ben", "sue", "ada"}),
    "accept": ("POST", f"/api/chats/{CHAT}/accept", None, {"zed", "nog"}, {"ana", "sue", "ada"}),
    "release an assigned chat": ("POST", f"/api/chats/{CHAT}/release", None, {"ana", "zed", "nog"}, {"ben", "sue", "ada"}),
    "close an assigned chat": ("POST", f"/api/chats/{CHAT}/close", None, {"ana", "zed", "nog"}, {"ben", "sue", "ada"}),
    "transfer an assigned chat": ("POST", f"/api/chats/{CHAT}/transfer", {"skill": "billing"}, {"ana", "zed", "nog"}, {"ben", "sue", "ada"}),
    "read the directory": ("GET", "/api/agents", None, {"nog"}, {"ana", "sue", "ada", "zed"}),
    "write the directory": ("POST", "/api/agents", {"agent_id": "new", "name": "New"}, {"ana", "ben", "sue", "zed", "nog"}, {"ada"}),
    "set an agent's availability": ("PUT", "/api/agents/ben/status", {"status": "available"}, {"ana", "zed", "nog"}, {"ben", "sue", "ada"}),
    "read templates by account": ("GET", f"/api/templates?waba_id={WABA_ID}", None, {"nog"}, {"ana", "sue", "ada", "zed"}),
    "read templates by number": ("GET", f"/api/templates?phone_number_id={NUMBER}", None, {"zed", "nog"}, {"ana", "sue", "ada"}),
    "read another account's templates": ("GET", f"/api/templates?waba_id={FOREIGN_WABA}", None, set(CALLERS), set()),
    "sync templates": ("POST", f"/api/templates/sync?waba_id={WABA_ID}", None, {"ana", "ben", "sue", "zed", "nog"}, {"ada"}),
    "sync another account's templates": ("POST", f"/api/templates/sync?waba_id={FOREIGN_WABA}", None, set(CALLERS), set()),
    "read a number": ("GET", f"/api/numbers/{NUMBER}", None, {"zed", "nog"}, {"ana", "sue", "ada"}),
    "read a customer's consent": ("GET", f"/api/contacts/{CHAT}/consent", None, {"zed", "nog"}, {"ana", "ben", "sue", "ada"}),
    "change a customer's consent": ("PUT", f"/api/contacts/{CHAT}/consent", {"purpose": "marketing", "state": "granted"},
                                    {"zed", "nog"}, {"ana", "ben", "sue", "ada"}),
}


def meta_templates(_graph, waba_id):
    return [{"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
             "components": [{"type": "BODY", "text": "Hello"}]}]


@pytest.mark.parametrize("route", list(ROUTES))
def test_each_route_refuses_and_allows_by_role(deployed, monkeypatch, route):
    from coexist.outbound.graph import GraphApi

    monkeypatch.setattr(GraphApi, "message_templates", meta_templates)  # Meta's answer to a sync
    method, path, body, refused_callers, allowed_callers = ROUTES[route]
    assert refused_callers | allowed_callers <= set(CALLERS)
    for who in sorted(refused_callers):
        assign(deployed, "ben")
        assert refused(call(who, method, path, body)), (route, who)
    for who in sorted(allowed_callers):
        assign(deployed, "ben")
        status, answer = call(who, method, path, body)
        # Allowed by the access rules: what follows is the use case's answer (a 409 is the workflow's).
        assert status in (200, 201, 202, 409), (route, who, status, answer)
        assert answer.get("code") != "forbidden"


# Routes that answer without asking the gate: the API's own description, and the audit trail's
# write methods, which exist only to refuse (405) whoever asks.
UNGATED = {("GET", "/api/openapi.json")} | {(m, p) for m in ("POST", "PUT", "PATCH", "DELETE") for p in ("/api/audit", "/api/audit/<entry_id>")}


def test_every_route_asks_the_gate_so_someone_in_no_group_gets_nothing(deployed):
    """A route that forgot the gate would answer a signed-in stranger: every route of the app, as
    registered (new ones included), refuses them, and the refusal is in the audit trail."""
    routes = [(r.method, r.path) for r in api_function.app._static_routes + api_function.app._dynamic_routes]
    assert len(routes) > 30
    query = f"?phone_number_id={NUMBER}&waba_id={WABA_ID}&from=2026-01-01&to=2026-01-31"
    for method, rule in routes:
        if (method, rule) in UNGATED:
            continue
        path = re.sub(r"<(?!chat_id>)(\w+)>", "x1", rule).replace("<chat_id>", CHAT) + query
        status, answer = call("nog", method, path, {} if method in ("POST", "PUT") else None)
        # A body that names the resource (a reminder's number) is read before the gate can be asked:
        # an empty one is refused as bad input; every other request is refused by the gate.
        bad_body = method in ("POST", "PUT") and status in (400, 415, 422)
        # So is an unknown reminder or export: its number is known only once it is found.
        unknown = status == 404 and re.search(r"<(?!chat_id>)\w+>", rule) is not None
        assert (status == 403 and answer["code"] == "forbidden") or bad_body or unknown, (method, rule, status, answer)
    refusals = {e["request"] for e in call("ada", "GET", "/api/audit?user=nog&limit=200")[1]["items"] if e["outcome"] == "refused"}
    assert {"GET /api/inbox", "GET /api/dashboard"} <= refusals


def test_a_chat_nobody_holds_is_anyones_on_its_number(deployed):
    assign(deployed, None)
    assert call("ana", "POST", f"/api/chats/{CHAT}/messages", SEND)[0] == 202
    assert call("ana", "POST", f"/api/chats/{CHAT}/close")[0] == 200
    assert refused(call("zed", "POST", f"/api/chats/{CHAT}/close"))


def test_a_supervisor_closes_an_agents_chat_on_their_behalf(deployed):
    code, chat = call("sue", "POST", f"/api/chats/{CHAT}/close")
    assert code == 200 and chat["mode"] == "closed" and chat["assignee"] is None


def test_listings_across_numbers_show_only_the_callers_numbers(deployed):
    deliver(deployed, other_number_message())
    table = deployed.dynamodb.Table(deployed.env["CHATS_TABLE"])
    table.update_item(Key={"chat_id": chat_of(OTHER_NUMBER, CUSTOMER)}, UpdateExpression="SET assignee = :a",
                      ExpressionAttributeValues={":a": "ben"})
    numbers_seen = lambda who: {c["phone_number_id"] for c in call(who, "GET", "/api/chats?assignee=ben")[1]["items"]}  # noqa: E731
    assert numbers_seen("ada") == {NUMBER, OTHER_NUMBER}
    assert numbers_seen("sue") == {NUMBER}
    assert numbers_seen("ben") == {NUMBER}


def other_number_message() -> dict:
    payload = text_message("wamid.elsewhere", int(time.time()))
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = OTHER_NUMBER
    return payload


def test_x_agent_id_is_ignored_when_deployed(deployed):
    # Ana's token naming Ben: still Ana, so Ben's chat stays out of reach.
    assert refused(call("ana", "POST", f"/api/chats/{CHAT}/close", headers={"X-Agent-Id": "ben"}))
    assert call("ben", "POST", f"/api/chats/{CHAT}/close", headers={"X-Agent-Id": "ana"})[0] == 200


def test_a_new_agents_numbers_come_from_the_directory_as_an_admin_writes_them(deployed):
    code, agent = call("ada", "POST", "/api/agents", {"agent_id": "zed", "name": "Zed", "numbers": [NUMBER, OTHER_NUMBER]})
    assert code == 201 and agent["numbers"] == sorted([NUMBER, OTHER_NUMBER])
    assert call("zed", "GET", f"/api/chats/{CHAT}")[0] == 200
    # Updating the profile without `numbers` keeps them.
    assert call("ada", "POST", "/api/agents", {"agent_id": "zed", "name": "Zed Z"})[1]["numbers"] == sorted([NUMBER, OTHER_NUMBER])


# --- local mode's tokens ----------------------------------------------------------------------


def local_call(token: str, method: str, path: str, agent: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    path = _path(path)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if agent:
        headers["X-Agent-Id"] = agent
    event = api_event(method, path, json.dumps(body).encode() if body is not None else b"", headers)
    response = api_function.lambda_handler(event, Context())
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def local(aws):
    for agent_id, (_, numbers) in CALLERS.items():
        wiring.agents().upsert(agent_id, agent_id.title(), ["general"], 3, numbers)
    deliver(aws, text_message("wamid.local", int(time.time())))
    assign(aws, "ben")
    return aws


def test_each_local_agent_has_its_own_token(local):
    assert local_call("local-agent-ana", "GET", f"/api/chats/{CHAT}")[0] == 200
    assert refused(local_call("local-agent-ana", "POST", f"/api/chats/{CHAT}/close"))
    assert refused(local_call("local-agent-ana", "POST", "/api/agents", body={"agent_id": "x", "name": "X"}))
    assert local_call("local-agent-ben", "POST", f"/api/chats/{CHAT}/close")[0] == 200


def test_a_local_agent_token_cannot_name_another_agent(local):
    assert refused(local_call("local-agent-ana", "POST", f"/api/chats/{CHAT}/close", agent="ben"))
    assert local_call("local-agent-ana", "GET", f"/api/chats/{CHAT}", agent="ana")[0] == 200


def test_the_shared_local_token_is_an_admin_acting_as_x_agent_id(local):
    assert local_call(API_TOKEN, "POST", "/api/agents", body={"agent_id": "x", "name": "X"})[0] == 201
    code, body = local_call(API_TOKEN, "POST", f"/api/chats/{CHAT}/accept")
    assert (code, body["code"]) == (400, "bad_request") and "X-Agent-Id" in body["message"]
    assert local_call(API_TOKEN, "POST", f"/api/chats/{CHAT}/close", agent="sue")[0] == 200


def test_tokens_for_agents_not_in_the_directory_or_malformed_are_401(local):
    for token in ("local-agent-nobody", "local-agent-", "local-agent", "local-dev-token-x", "x" * 5000):
        code, body = local_call(token, "GET", f"/api/chats/{CHAT}")
        assert (code, body["code"]) == (401, "unauthorized"), token


# --- a supervisor in a live conversation ---------------------------------------------------------


@pytest.fixture
def live(monkeypatch):
    from local.workflows import EXECUTE_STATE_MACHINES
    from tests.conftest import emulated_account
    from tests.integration.test_conversation import FAST

    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps(FAST))
    monkeypatch.setenv("COEXIST_API_AUTH", "cognito")
    with emulated_account(monkeypatch, config=EXECUTE_STATE_MACHINES, workflow=True) as account:
        for agent_id, (_, numbers) in CALLERS.items():
            wiring.agents().upsert(agent_id, agent_id.title(), ["general"], 3, numbers)
        yield account


def test_a_supervisor_closes_a_live_conversation_on_the_assignees_behalf(live):
    from tests.integration.test_conversation import says, wait_for

    chat = lambda: wiring.inbox_reader().chat(chat_of(NUMBER, CUSTOMER))  # noqa: E731
    assert call("ben", "PUT", "/api/agents/ben/status", {"status": "available"})[0] == 200
    deliver(live, says("I want to talk to a person"))
    wait_for(lambda: chat()["offered_to"] == "ben", what="the offer to ben")
    assert call("ben", "POST", f"/api/chats/{CHAT}/accept")[0] == 200
    wait_for(lambda: chat()["waiting_for"] == "agent" and chat()["assignee"] == "ben", what="ben handling the chat")
    assert refused(call("ana", "POST", f"/api/chats/{CHAT}/close"))
    assert chat()["waiting_for"] == "agent"  # the refusal changed nothing
    assert call("sue", "POST", f"/api/chats/{CHAT}/close")[0] == 200
    # The workflow took it as Ben's close: the conversation moves on to the survey and Ben is free.
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey after the close")
    ben = next(a for a in call("sue", "GET", "/api/agents")[1]["items"] if a["agent_id"] == "ben")
    assert ben["active_chats"] == 0
