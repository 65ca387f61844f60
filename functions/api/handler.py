"""The agent API (read side): chats, messages and numbers, as JSON with bearer auth."""

from __future__ import annotations

import hmac

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths

from coexist import wiring
from coexist.reads import BadRequest, NotFound
from coexist.settings import settings

logger = Logger(service="coexist-api")
tracer = Tracer(service="coexist-api")
app = APIGatewayRestResolver(strip_prefixes=[])


class Unauthorized(Exception):
    pass


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"code": code, "message": message})


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return _error(404, "not_found", str(error))


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _error(400, "bad_request", str(error))


@app.exception_handler(Unauthorized)
def _unauthorized(error: Unauthorized) -> Response:
    response = _error(401, "unauthorized", str(error))
    response.headers["WWW-Authenticate"] = 'Bearer realm="coexist"'
    return response


@app.not_found
def _no_route(_exception) -> Response:
    return _error(404, "not_found", "no such route")


def _authenticate(app: APIGatewayRestResolver, next_middleware):
    config = settings()
    if config.api_auth == "cognito":
        # API Gateway's Cognito authorizer already validated the JWT; refuse if it did not run.
        if not (app.current_event.request_context.authorizer or {}).get("claims"):
            raise Unauthorized("a valid bearer token is required")
    else:
        header = app.current_event.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_token.encode()):
            raise Unauthorized("a valid bearer token is required")
    return next_middleware(app)


app.use(middlewares=[_authenticate])
try:  # deployed, this folder is the function's code root; tests and local mode import from the repo
    import console_routes
except ModuleNotFoundError:
    from functions.api import console_routes
app.include_router(console_routes.router)



def _query(name: str) -> str | None:
    return (app.current_event.query_string_parameters or {}).get(name)


@app.get("/api/chats")
def list_chats():
    if _query("assignee"):
        return wiring.inbox_reader().chats_of_agent(_query("assignee"), _query("limit"), _query("cursor"))
    return wiring.inbox_reader().chats(_query("phone_number_id"), _query("limit"), _query("cursor"))


@app.get("/api/chats/<chat_id>")
def get_chat(chat_id: str):
    return wiring.inbox_reader().chat(chat_id)


@app.get("/api/chats/<chat_id>/messages")
def list_messages(chat_id: str):
    return wiring.inbox_reader().messages(chat_id, _query("limit"), _query("cursor"))


@app.post("/api/chats/<chat_id>/messages")
def send_message(chat_id: str):
    from pydantic import ValidationError

    from coexist.outbound.outbox import ChatNotFound, NotQueued, Refused
    from coexist.outbound.requests import parse_send_request
    from coexist.reads import message_view

    try:
        body = app.current_event.json_body
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    try:
        request = parse_send_request(body)
    except ValidationError as error:
        return Response(422, content_types.APPLICATION_JSON, {
            "code": "invalid_message",
            "message": _first_problem(error),
            "errors": [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in error.errors(include_url=False, include_input=False)],
        })
    key = app.current_event.headers.get("Idempotency-Key")
    try:
        accepted = wiring.outbox().send(chat_id, request, source="agent", idempotency_key=key, sent_by=_caller())
    except ChatNotFound:
        raise NotFound(f"chat {chat_id} not found") from None
    except Refused as refused:
        return _error(refused.refusal.http_status, refused.refusal.code, refused.refusal.message)
    except NotQueued:
        return _error(503, "not_queued", "The message was stored but could not be queued; retry with the same Idempotency-Key.")
    if accepted.created and settings().conversation_state_machine_arn:
        # A person answered: the bot stops and stays quiet (the same rule as a phone-app reply).
        wiring.signals().agent_replied(chat_id, _caller())
    return Response(202, content_types.APPLICATION_JSON, message_view(accepted.message))


def _first_problem(error) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def _caller() -> str:
    """The agent making the request: the Cognito user, or X-Agent-Id with the shared local token."""
    claims = (app.current_event.request_context.authorizer or {}).get("claims") or {}
    return claims.get("cognito:username") or claims.get("sub") or app.current_event.headers.get("X-Agent-Id") or "api-token"


def _agent() -> str:
    agent = _caller()
    if agent == "api-token":
        raise BadRequest("say which agent you are: the X-Agent-Id header (with the shared token)")
    return agent


def _conflicts(action):
    from coexist.conversation.signals import Conflict

    try:
        action()
    except Conflict as conflict:
        if conflict.code == "not_found":
            raise NotFound(str(conflict)) from None
        return _error(409, conflict.code, str(conflict))
    return None


@app.post("/api/chats/<chat_id>/accept")
def accept_chat(chat_id: str):
    agent = _agent()
    return _conflicts(lambda: wiring.signals().accept(chat_id, agent)) or wiring.inbox_reader().chat(chat_id)


@app.post("/api/chats/<chat_id>/release")
def release_chat(chat_id: str):
    agent = _agent()
    return _conflicts(lambda: wiring.signals().release(chat_id, agent)) or wiring.inbox_reader().chat(chat_id)


@app.post("/api/chats/<chat_id>/close")
def close_chat(chat_id: str):
    agent = _agent()
    return _conflicts(lambda: wiring.signals().close(chat_id, agent)) or wiring.inbox_reader().chat(chat_id)


@app.post("/api/chats/<chat_id>/transfer")
def transfer_chat(chat_id: str):
    agent = _agent()
    body = _json_body()
    to_agent, skill = body.get("agent_id"), body.get("skill")
    if not to_agent and not skill:
        raise BadRequest("transfer needs agent_id or skill")
    return _conflicts(lambda: wiring.signals().transfer(chat_id, agent, to_agent, skill)) or wiring.inbox_reader().chat(chat_id)


def _json_body() -> dict:
    try:
        body = app.current_event.json_body
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _agent_view(item: dict) -> dict:
    from coexist.store.items import from_item_value

    item = from_item_value(item)
    return {
        "agent_id": item["agent_id"], "name": item.get("name"), "skills": item.get("skills", []),
        "capacity": item.get("capacity", 0), "status": item.get("availability"), "active_chats": item.get("active_chats", 0),
    }


@app.get("/api/agents")
def list_agents():
    return {"items": [_agent_view(a) for a in wiring.agents().all()], "next": None}


@app.post("/api/agents")
def create_agent():
    body = _json_body()
    agent_id, name = body.get("agent_id") or body.get("id"), body.get("name")
    skills, capacity = body.get("skills", []), body.get("capacity", 3)
    if not isinstance(agent_id, str) or not agent_id or not isinstance(name, str) or not name:
        raise BadRequest("agent_id and name are required strings")
    if not isinstance(skills, list) or not all(isinstance(k, str) and k for k in skills):
        raise BadRequest("skills must be a list of strings")
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 100:
        raise BadRequest("capacity must be a whole number from 1 to 100")
    return Response(201, content_types.APPLICATION_JSON, _agent_view(wiring.agents().upsert(agent_id, name, skills, capacity)))


@app.put("/api/agents/<agent_id>/status")
def set_agent_status(agent_id: str):
    status = _json_body().get("status")
    if status not in ("available", "away"):
        raise BadRequest("status must be available or away")
    agent = wiring.agents().set_availability(agent_id, status)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return _agent_view(agent)


@app.get("/api/templates")
def list_templates():
    waba_id = _waba_id()
    items = wiring.templates().list(waba_id)
    return {"items": [_template_view(i) for i in items], "next": None}


@app.post("/api/templates/sync")
def sync_templates():
    from coexist.outbound.graph import TemplateSyncError
    from coexist.outbound.template_sync import sync_templates as sync

    try:
        return {"synced": sync(wiring.graph_api(), wiring.templates(), [_waba_id()])}
    except TemplateSyncError as error:
        return _error(502, "meta_error", str(error))


def _waba_id() -> str:
    waba_id = _query("waba_id")
    number = _query("phone_number_id")
    if not waba_id and number:
        waba_id = (wiring.inbox().numbers.get(number) or {}).get("waba_id")
        if not waba_id:
            raise NotFound(f"phone number {number} not found")
    if not waba_id:
        raise BadRequest("waba_id or phone_number_id is required")
    return waba_id


def _template_view(item: dict) -> dict:
    from coexist.store.items import from_item_value

    item = from_item_value(item)
    return {k: item.get(k) for k in ("name", "language", "status", "category", "body_parameters", "components")} | {
        "waba_id": item["waba_id"]
    }


@app.get("/api/numbers/<phone_number_id>")
def get_number(phone_number_id: str):
    return wiring.inbox_reader().number(phone_number_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
