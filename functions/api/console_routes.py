"""The agent console's routes beyond the inbox API: a number's chats filtered by mode or by name,
and the API's OpenAPI 3 document; and, for every route once included, the check that a chat id
in the path is one (`<phone_number_id>_<wa_id>`) before any handler looks it up.

These routes are typed (query parameters and answer models), so Powertools validates them and
describes them in `GET /api/openapi.json`; a parameter that fails validation is a 400
`bad_request` like every other bad input of the API.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, Field

from coexist import wiring
from coexist.authorization import gate_of
from coexist.domain.access import Action
from coexist.domain.chat import ChatMode
from coexist.domain.identity import is_customer_id

router = APIGatewayRouter()
MAX_PATH_ID = 128  # the agent API's limit on an id in a path
API_TITLE = "Coexist agent API"
API_VERSION = "1"


class Problem(BaseModel):
    code: str = Field(description="bad_request, unauthorized, forbidden, not_found, …")
    message: str


class Chat(BaseModel):
    """A chat as the inbox lists it (the same fields as GET /api/chats/{chat_id})."""

    chat_id: str = Field(description="the customer's opaque id on this number (never a phone number)")
    phone_number_id: str
    wa_id: str | None = Field(None, description="the customer's phone number, when Meta shares it")
    user_id: str | None = Field(None, description="the business-scoped user id (BSUID)")
    parent_user_id: str | None = None
    username: str | None = None
    identity_changes: list[dict] = Field(default_factory=list)
    merged_from: list[str] = Field(default_factory=list)
    merged_into: str | None = None
    contact_name: str | None = None
    mode: ChatMode
    assignee: str | None = None
    window_expires_at: str | None = None
    window_open: bool
    last_message_at: str | None = None
    last_customer_message_at: str | None = None
    last_app_activity_at: str | None = None
    referral_at: str | None = None
    free_entry_point_expires_at: str | None = None
    conversation_id: str | None = None
    conversation_state: str | None = None
    waiting_for: str | None = None
    offered_to: str | None = None
    bot_intent: str | None = None
    takeover_by: str | None = None
    takeover_at: str | None = None
    queued_at: str | None = None
    assigned_at: str | None = None
    first_human_reply_at: str | None = None
    closed_at: str | None = None
    window_warning_at: str | None = None
    window_closing: dict | None = Field(None, description="the agent's warning that the window closes soon: warned_at, closes_at, template")
    satisfaction_score: int | None = None
    reminder_context: dict | None = Field(None, description="the reminder the customer asked to reschedule")


class ChatPage(BaseModel):
    items: list[Chat]
    next: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


class Spread(BaseModel):
    count: int
    median_s: int | None
    p90_s: int | None
    max_s: int | None


class Queue(BaseModel):
    length: int = Field(description="chats waiting for an agent now")
    waiting: Spread = Field(description="how long they have waited so far")


class Satisfaction(BaseModel):
    responses: int
    average: float | None = Field(description="1 (poor) to 3 (great)")
    distribution: dict[str, int]


class DayOfMessages(BaseModel):
    day: str
    customer: int
    bot: int
    agent: int
    business_app: int
    campaign: int
    history: int


class Dashboard(BaseModel):
    phone_number_id: str
    days: int
    since: str
    generated_at: str
    chats_considered: int
    sampled: bool = Field(description="more chats were active than are counted: the figures are of the newest")
    queue: Queue
    first_response: Spread = Field(description="queued → the first reply of a person")
    resolution: Spread = Field(description="queued → closed")
    satisfaction: Satisfaction
    messages_per_day: list[DayOfMessages]


PROBLEMS = {
    400: {"description": "a bad parameter or cursor", "content": {"application/json": {"model": Problem}}},
    401: {"description": "no valid bearer token", "content": {"application/json": {"model": Problem}}},
}


def _chat_ids_are_checked(app, next_middleware):
    # A malformed id names no chat: 404, as the reads answer, rather than a storage error.
    parts = app.current_event.path.split("/")
    chat_id = unquote(parts[3]) if len(parts) > 3 and parts[1:3] == ["api", "chats"] else None
    # An id over the length limit gets the route's own 400, which says so.
    if chat_id is not None and len(chat_id) <= MAX_PATH_ID and not is_customer_id(chat_id):
        return Response(404, content_types.APPLICATION_JSON, {"code": "not_found", "message": "no such chat"})
    return next_middleware(app)


router.use(middlewares=[_chat_ids_are_checked])


@router.exception_handler(RequestValidationError)
def _invalid_parameter(error: RequestValidationError) -> Response:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
    return Response(400, content_types.APPLICATION_JSON, {"code": "bad_request", "message": f"{where}: {first.get('msg')}"})


@router.get(
    "/api/inbox",
    summary="A number's chats, filtered",
    description="Newest first, by mode and/or contact name (or number). Each request reads a bounded "
    "number of index pages, so a page can hold fewer than `limit` chats while `next` is not null.",
    tags=["Console"],
    enable_validation=True,
    responses={200: {"description": "a page of chats", "content": {"application/json": {"model": ChatPage}}}, **PROBLEMS},
)
def filtered_chats(
    phone_number_id: Annotated[str, Query(min_length=1, description="the business number's id")],
    mode: Annotated[ChatMode | None, Query(description="only chats in this mode")] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the contact's name or number")] = None,
    limit: Annotated[int | None, Query(ge=1, le=200, description="chats per page (default 50)")] = None,
    cursor: Annotated[str | None, Query(description="the `next` of the previous page")] = None,
) -> ChatPage:
    from coexist.inbox_filters import FilteredInbox

    gate_of(router).number(phone_number_id, Action.LIST_CHATS)
    inbox = FilteredInbox(wiring.inbox())
    return ChatPage.model_validate(inbox.chats_matching(phone_number_id, mode, q, str(limit) if limit else None, cursor))


@router.get(
    "/api/dashboard",
    summary="A supervisor's figures for a number",
    description="Queue and waiting times, first-response and resolution times, satisfaction, and "
    "messages per day by source, over the last `days` whole UTC days (today included).",
    tags=["Console"],
    enable_validation=True,
    responses={200: {"description": "the figures", "content": {"application/json": {"model": Dashboard}}}, **PROBLEMS},
)
def supervisor_dashboard(
    phone_number_id: Annotated[str, Query(min_length=1, description="the business number's id")],
    days: Annotated[int, Query(ge=1, le=31, description="how many days back, today included")] = 7,
) -> Dashboard:
    from coexist.supervisor import Supervisor

    gate_of(router).number(phone_number_id, Action.READ_DASHBOARD)
    return Dashboard.model_validate(Supervisor(wiring.inbox()).dashboard(phone_number_id, days))


@router.get("/api/openapi.json", summary="This document", tags=["Console"], include_in_schema=False)
def openapi_document():
    document = router.api_resolver.get_openapi_json_schema(
        title=API_TITLE, version=API_VERSION,
        description="Chats, messages, handoff, agents, templates and numbers of a Coexist deployment. "
        "Bearer auth: a Cognito ID token when deployed, the local token in local mode.",
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        security=[{"bearer": []}],
    )
    return Response(200, content_types.APPLICATION_JSON, document)
