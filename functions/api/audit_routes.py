"""The audit trail, for admins: `GET /api/audit`, newest first, filtered by user, chat, action and
time. Entries are never changed or removed: no route here writes one, and any other method on
these paths is answered 405 (the gate writes entries; coexist.store.audit)."""

from __future__ import annotations

from datetime import datetime, timezone

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from coexist import wiring
from coexist.authorization import gate_of
from coexist.domain.access import Action
from coexist.reads import BadRequest, page_size, query_parameter

router = APIGatewayRouter()


def _moment(name: str) -> datetime | None:
    value = query_parameter(router, name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 time, e.g. 2026-01-31T12:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@router.get("/api/audit")
def audit_trail():
    from coexist.store.audit import AuditQuery, BadCursor

    query = AuditQuery(
        actor=query_parameter(router, "user"), chat_id=query_parameter(router, "chat_id"),
        action=query_parameter(router, "action"),
        since=_moment("from"), until=_moment("to"),
    )
    if query.since and query.until and query.since > query.until:
        raise BadRequest("from must not be after to")
    limit = page_size(query_parameter(router, "limit"))
    # Reading the trail is itself recorded, with what was asked for.
    gate_of(router).allow(Action.READ_AUDIT, detail={"filter_user": query.actor, "filter_chat_id": query.chat_id,
                                                     "filter_action": query.action})
    try:
        return wiring.audit_log().page(query, limit, _cursor())
    except BadCursor:
        raise BadRequest("cursor does not belong to this listing; pass the `next` value of the previous page") from None


def _cursor() -> str | None:
    value = (router.current_event.query_string_parameters or {}).get("cursor")
    if value and len(value) > 2048:
        raise BadRequest("cursor must be at most 2048 characters")
    return value or None


@router.route("/api/audit", method=["POST", "PUT", "PATCH", "DELETE"])
def audit_is_read_only():
    return _read_only()


@router.route("/api/audit/<entry_id>", method=["POST", "PUT", "PATCH", "DELETE"])
def audit_entry_is_read_only(entry_id: str):
    return _read_only()


def _read_only() -> Response:
    response = Response(405, content_types.APPLICATION_JSON, {
        "code": "method_not_allowed", "message": "The audit trail is append-only: it can only be listed (GET /api/audit).",
    })
    response.headers["Allow"] = "GET"
    return response
