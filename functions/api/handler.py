"""The agent API: chats, messages, numbers, sending, the conversation actions, the agent directory
and templates, as JSON with bearer auth. Who may do what is decided by coexist.domain.access; this
module gathers the facts (coexist.authorization) and calls the use cases."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.logging import correlation_paths

from coexist import wiring
from coexist.authorization import MAX_AGENT_ID, ChatMissing, Credentials, Forbidden, Gate, Unauthorized, gate_of, principal_of
from coexist.domain.access import Action
from coexist.domain.audit import AuditUnavailable
from coexist.observability import lambda_entry, tracer_of
from coexist.resources import CONSOLE_ORIGIN_ENV, CONSOLE_REQUEST_HEADERS
from coexist.reads import MAX_ID, BadRequest, NotFound, checked_text, query_parameter
from coexist.settings import settings

logger = Logger(service="coexist-api")
tracer = tracer_of("coexist-api")
app = APIGatewayRestResolver(strip_prefixes=[], cors=CORSConfig(
    # Deployed, the console is served by CloudFront from an origin of its own: its calls are
    # cross-origin, allowed for exactly that origin. Local mode serves it on the API's origin.
    allow_origin=os.environ[CONSOLE_ORIGIN_ENV], allow_headers=list(CONSOLE_REQUEST_HEADERS), max_age=3600,
) if os.environ.get(CONSOLE_ORIGIN_ENV) else None)
# Deployed, the API runs only behind Cognito, with the access token read from Secrets Manager.
settings().require_secret_arns("access_token")

# Limits on what a request carries (a DynamoDB item holds at most 400 KB, a key 2 KB; Meta's own
# limits on message content are checked by the send request's model).
MAX_BODY_BYTES = 64 * 1024
MAX_CURSOR = 1024
MAX_NAME = 200
MAX_SKILLS, MAX_SKILL = 50, 64
MAX_NUMBERS = 100


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"code": code, "message": message})


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return _error(404, "not_found", str(error))


@app.exception_handler(ChatMissing)
def _chat_missing(error: ChatMissing) -> Response:
    return _error(404, "not_found", f"chat {error} not found")


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _error(400, "bad_request", str(error))


@app.exception_handler(Unauthorized)
def _unauthorized(error: Unauthorized) -> Response:
    response = _error(401, "unauthorized", str(error))
    response.headers["WWW-Authenticate"] = 'Bearer realm="coexist"'
    return response


@app.exception_handler(Forbidden)
def _forbidden(error: Forbidden) -> Response:
    return _error(error.refusal.http_status, error.refusal.code, error.refusal.message)


@app.exception_handler(AuditUnavailable)
def _audit_unavailable(error: AuditUnavailable) -> Response:
    # Fail closed: an access the audit trail cannot record does not happen.
    logger.error("audit entry not written; request refused", extra={"error": str(error)})
    return _error(503, "audit_unavailable", "The audit trail cannot record this request right now; nothing was done. Retry shortly.")


@app.not_found
def _no_route(_exception) -> Response:
    return _error(404, "not_found", "no such route")


def _authenticate(app: APIGatewayRestResolver, next_middleware):
    config = settings()
    event = app.current_event
    credentials = Credentials(
        claims=(event.request_context.authorizer or {}).get("claims") if config.api_auth == "cognito" else None,
        authorization=event.headers.get("Authorization"),
        # Honoured only with local mode's tokens; deployed, the Cognito token says who you are.
        agent_header=event.headers.get("X-Agent-Id") if config.api_auth == "token" else None,
    )
    directory = wiring.agents().get
    principal = principal_of(credentials, config.api_auth, config.api_token, config.agent_token_prefix, directory)
    app.append_context(gate=Gate(principal, _chat_item, directory, config.accounts, audit=_audit_hook(principal, event)))
    return next_middleware(app)


def _audit_hook(principal, event):
    """Each decision of this request's gate, recorded as this caller's, from where API Gateway saw it."""
    from coexist.domain.audit import SHARED_TOKEN_ACTOR, Caller, recorder

    identity = event.request_context.identity
    caller = Caller(
        actor=principal.agent_id or SHARED_TOKEN_ACTOR,
        role=principal.role.name.lower() if principal.role is not None else None,
        source_ip=identity.source_ip,
        user_agent=(identity.user_agent or "")[:512] or None,
        request=f"{event.http_method} {event.path}"[:512],  # the path only: a query string may name a phone number
        request_id=event.request_context.request_id,
    )
    return recorder(wiring.audit_log().record, caller)


def _chat_item(chat_id: str):
    """The chat, read once per request: the gate and the use case behind it share the read."""
    read = app.context.setdefault("chat_items", {})
    if chat_id not in read:
        read[chat_id] = wiring.inbox().chats.get(chat_id)  # None for an id that names no chat
    return read[chat_id]


app.use(middlewares=[_authenticate])
try:  # deployed, this folder is the function's code root; tests and local mode import from the repo
    import console_routes
    import consent_routes
    import cost_routes
    import audit_routes
    import privacy_routes
    import reminder_routes
    import campaign_routes
except ModuleNotFoundError:
    from functions.api import (audit_routes, campaign_routes, console_routes, consent_routes, cost_routes, privacy_routes,
                               reminder_routes)
app.include_router(console_routes.router)
app.include_router(consent_routes.router)
app.include_router(cost_routes.router)
app.include_router(audit_routes.router)
app.include_router(privacy_routes.router)
app.include_router(reminder_routes.router)
app.include_router(campaign_routes.router)


def _cursor() -> str | None:
    return query_parameter(app, "cursor", MAX_CURSOR)


@app.get("/api/chats")
def list_chats():
    assignee = query_parameter(app, "assignee", MAX_AGENT_ID)
    if assignee:
        gate_of(app).agent(assignee, Action.LIST_ASSIGNED)
        page = wiring.inbox_reader().chats_of_agent(assignee, query_parameter(app, "limit"), _cursor())
        # An agent's chats may cross numbers: show only those of the caller's numbers.
        return {"items": [c for c in page["items"] if gate_of(app).sees(c)], "next": page["next"]}
    number = query_parameter(app, "phone_number_id")
    if number:
        gate_of(app).number(number, Action.LIST_CHATS)
    wa_id, user_id = query_parameter(app, "wa_id"), query_parameter(app, "user_id")
    if wa_id or user_id:
        return wiring.inbox_reader().chat_by_identifier(number, wa_id, user_id)
    return wiring.inbox_reader().chats(number, query_parameter(app, "limit"), _cursor())


@app.get("/api/chats/<chat_id>")
def get_chat(chat_id: str):
    gate_of(app).chat(checked_text(chat_id, "chat_id"), Action.READ_CHAT)
    return wiring.inbox_reader().chat(chat_id)


@app.get("/api/chats/<chat_id>/messages")
def list_messages(chat_id: str):
    gate_of(app).chat(checked_text(chat_id, "chat_id"), Action.READ_CHAT)
    return wiring.inbox_reader().messages(chat_id, query_parameter(app, "limit"), _cursor())


@app.post("/api/chats/<chat_id>/messages")
def send_message(chat_id: str):
    from pydantic import ValidationError

    from coexist.domain.records import Source
    from coexist.outbound.outbox import ChatNotFound, NotQueued, Refused
    from coexist.outbound.requests import parse_send_request
    from coexist.reads import message_view

    gate_of(app).chat(checked_text(chat_id, "chat_id"), Action.SEND)
    body = _json_body(object_only=False)
    try:
        request = parse_send_request(body)
    except ValidationError as error:
        return Response(422, content_types.APPLICATION_JSON, {
            "code": "invalid_message",
            "message": _first_problem(error),
            "errors": [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in error.errors(include_url=False, include_input=False)],
        })
    key = checked_text(app.current_event.headers.get("Idempotency-Key"), "Idempotency-Key", required=False)
    sender = gate_of(app).principal.agent_id or SHARED_TOKEN_SENDER
    try:
        accepted = wiring.outbox().send(chat_id, request, source=Source.AGENT, idempotency_key=key, sent_by=sender, chat_item=_chat_item(chat_id))
    except ChatNotFound:
        raise NotFound(f"chat {chat_id} not found") from None
    except Refused as refused:
        return _error(refused.refusal.http_status, refused.refusal.code, refused.refusal.message)
    except NotQueued:
        return _error(503, "not_queued", "The message was stored but could not be queued; retry with the same Idempotency-Key.")
    if accepted.created and settings().conversation_state_machine_arn:
        # A person answered: the bot stops and stays quiet (the same rule as a phone-app reply).
        wiring.signals().agent_replied(chat_id, sender)
    return Response(202, content_types.APPLICATION_JSON, message_view(accepted.message))


def _first_problem(error) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


SHARED_TOKEN_SENDER = "api-token"  # sent_by of a message sent with local mode's shared token alone


def _agent(acting: str | None) -> str:
    if acting is None:
        raise BadRequest("say which agent you are: the X-Agent-Id header (with the shared token)")
    return acting


def _conflicts(action):
    from coexist.conversation.signals import Conflict

    try:
        action()
    except Conflict as conflict:
        if conflict.code == "not_found":
            raise NotFound(str(conflict)) from None
        return _error(409, conflict.code, str(conflict))
    return None


def _chat_action(chat_id: str, action: Action) -> str:
    """The agent on whose behalf the workflow is told of an allowed action on the chat."""
    chat = gate_of(app).chat(checked_text(chat_id, "chat_id"), action)
    return _agent(gate_of(app).acting_agent(action, chat))


@app.post("/api/chats/<chat_id>/accept")
def accept_chat(chat_id: str):
    agent = _chat_action(chat_id, Action.ACCEPT)
    return _conflicts(lambda: wiring.signals().accept(chat_id, agent)) or wiring.inbox_reader().chat(chat_id)


@app.post("/api/chats/<chat_id>/release")
def release_chat(chat_id: str):
    agent = _chat_action(chat_id, Action.RELEASE)
    return _conflicts(lambda: wiring.signals().release(chat_id, agent)) or wiring.inbox_reader().chat(chat_id)


@app.post("/api/chats/<chat_id>/close")
def close_chat(chat_id: str):
    agent = _chat_action(chat_id, Action.CLOSE)
    return _conflicts(lambda: wiring.signals().close(chat_id, agent)) or wiring.inbox_reader().chat(chat_id)


@app.post("/api/chats/<chat_id>/transfer")
def transfer_chat(chat_id: str):
    agent = _chat_action(chat_id, Action.TRANSFER)
    body = _json_body()
    to_agent = checked_text(body.get("agent_id"), "agent_id", MAX_AGENT_ID, required=False)
    skill = checked_text(body.get("skill"), "skill", MAX_SKILL, required=False)
    if not to_agent and not skill:
        raise BadRequest("transfer needs agent_id or skill")
    return _conflicts(lambda: wiring.signals().transfer(chat_id, agent, to_agent, skill)) or wiring.inbox_reader().chat(chat_id)


def _json_body(object_only: bool = True):
    try:
        raw = app.current_event.decoded_body or ""  # UnicodeDecodeError is a ValueError
        if len(raw.encode()) > MAX_BODY_BYTES:
            raise BadRequest(f"the body must be at most {MAX_BODY_BYTES} bytes")
        body = app.current_event.json_body
    except ValueError:
        raise BadRequest("the body must be JSON (UTF-8)") from None
    if object_only and not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _agent_view(item: dict) -> dict:
    from coexist.store.items import from_item_value

    item = from_item_value(item)
    return {
        "agent_id": item["agent_id"], "name": item.get("name"), "skills": item.get("skills", []),
        "numbers": item.get("numbers", []),
        "capacity": item.get("capacity", 0), "status": item.get("availability"), "active_chats": item.get("active_chats", 0),
    }


@app.get("/api/agents")
def list_agents():
    gate_of(app).allow(Action.READ_DIRECTORY)
    return {"items": [_agent_view(a) for a in wiring.agents().all()], "next": None}


@app.post("/api/agents")
def create_agent():
    body = _json_body()
    agent_id = checked_text(body.get("agent_id") or body.get("id"), "agent_id", MAX_AGENT_ID)
    gate_of(app).agent(agent_id, Action.WRITE_DIRECTORY)
    name = checked_text(body.get("name"), "name", MAX_NAME)
    skills, capacity, numbers = body.get("skills", []), body.get("capacity", 3), body.get("numbers")
    if not isinstance(skills, list) or len(skills) > MAX_SKILLS:
        raise BadRequest(f"skills must be a list of at most {MAX_SKILLS} strings")
    skills = [checked_text(k, "each skill", MAX_SKILL) for k in skills]
    if numbers is not None:
        if not isinstance(numbers, list) or len(numbers) > MAX_NUMBERS:
            raise BadRequest(f"numbers must be a list of at most {MAX_NUMBERS} phone_number_ids")
        numbers = [checked_text(n, "each number", MAX_ID) for n in numbers]
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 100:
        raise BadRequest("capacity must be a whole number from 1 to 100")
    agent = wiring.agents().upsert(agent_id, name, skills, capacity, numbers)
    return Response(201, content_types.APPLICATION_JSON, _agent_view(agent))


@app.put("/api/agents/<agent_id>/status")
def set_agent_status(agent_id: str):
    gate_of(app).agent(checked_text(agent_id, "agent_id", MAX_AGENT_ID), Action.SET_AVAILABILITY)
    status = _json_body().get("status")
    if status not in ("available", "away"):
        raise BadRequest("status must be available or away")
    agent = wiring.agents().set_availability(agent_id, status)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return _agent_view(agent)


@app.get("/api/templates")
def list_templates():
    waba_id = _account(Action.READ_TEMPLATES)
    items = wiring.templates().list(waba_id)
    return {"items": [_template_view(i) for i in items], "next": None}


@app.post("/api/templates/sync")
def sync_templates():
    from coexist.outbound.graph import TemplateSyncError
    from coexist.outbound.template_sync import sync_templates as sync

    waba_id = _account(Action.SYNC_TEMPLATES)
    try:
        return {"synced": sync(wiring.graph_api(), wiring.templates(), [waba_id])}
    except TemplateSyncError as error:
        return _error(502, "meta_error", str(error))


def _account(action: Action) -> str:
    """The account named by `waba_id` or by one of its numbers (`phone_number_id`), once allowed."""
    waba_id = query_parameter(app, "waba_id")
    number = query_parameter(app, "phone_number_id")
    if not waba_id and number:
        gate_of(app).number(number, Action.READ_NUMBER)
        waba_id = (wiring.inbox().numbers.get(number) or {}).get("waba_id")
        if not waba_id:
            raise NotFound(f"phone number {number} not found")
    if not waba_id:
        raise BadRequest("waba_id or phone_number_id is required")
    gate_of(app).account(waba_id, action, via_number=None if query_parameter(app, "waba_id") else number)
    return waba_id


def _template_view(item: dict) -> dict:
    from coexist.store.items import from_item_value

    item = from_item_value(item)
    return {k: item.get(k) for k in ("name", "language", "status", "category", "body_parameters", "components")} | {
        "waba_id": item["waba_id"]
    }


@app.get("/api/numbers/<phone_number_id>")
def get_number(phone_number_id: str):
    gate_of(app).number(checked_text(phone_number_id, "phone_number_id"), Action.READ_NUMBER)
    return wiring.inbox_reader().number(phone_number_id)


@lambda_entry(logger, tracer, correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
