"""The consent ledger's routes (coexist.domain.consent): a customer's consent per purpose with its
history, an agent's change of it, and an admin's bulk CSV import.

- `GET /api/contacts/{chat_id}/consent`: whoever may read the chat.
- `PUT /api/contacts/{chat_id}/consent`: whoever may read the chat; the change names the agent.
- `POST /api/consent/imports`: admins; the body is the CSV file itself (`Content-Type: text/csv`).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from coexist import wiring
from coexist.authorization import gate_of
from coexist.domain import consent
from coexist.domain.access import Action
from coexist.domain.identity import is_customer_id
from coexist.reads import MAX_ID, BadRequest, NotFound, decode_cursor, encode_cursor, iso, page_size, query_parameter

router = APIGatewayRouter()
MAX_CURSOR = 1024
MAX_BODY_BYTES = 64 * 1024
MAX_FILE_NAME = 200
PUT_FIELDS = frozenset({"purpose", "state", "note"})
CSV_TYPES = ("text/csv", "application/csv", "text/plain")
HISTORY_PAGE = {"phone_number_id": str, "customer_id": str}


def _json(status: int, body: dict) -> Response:
    return Response(status, content_types.APPLICATION_JSON, body)


def _chat(chat_id: str, action: Action):
    """The chat (a customer on a number) once the caller may act on it; merged-away chats are gone."""
    if len(chat_id) > MAX_ID:
        raise BadRequest(f"chat_id must be a string of at most {MAX_ID} printable characters")
    if not is_customer_id(chat_id):
        raise NotFound(f"chat {chat_id} not found")
    gate_of(router).chat(chat_id, action)
    chat = wiring.inbox().chats.get(chat_id)
    if chat is None or chat.merged_into:
        raise NotFound(f"chat {chat_id} not found")
    return chat


def _agent_id() -> str:
    agent = gate_of(router).principal.agent_id
    if agent is None:
        raise BadRequest("say which agent you are: the X-Agent-Id header (with the shared token)")
    return agent


def _purposes_view(current: dict) -> dict:
    return {
        purpose: {"state": c.state.value, "since": iso(c.at), "change_id": c.change_id}
        for purpose, c in current.items()
    }


def _change_view(item: dict) -> dict:
    from coexist.store.consent import change_from_item

    view = change_from_item(item)
    return view | {"at": iso(view["at"]), "recorded_at": iso(view["recorded_at"])}


def _invalid(problem: consent.InvalidConsent) -> Response:
    return _json(422, {"code": "invalid_consent", "message": str(problem),
                       "errors": [{"field": problem.field, "problem": problem.problem}]})


@router.get("/api/contacts/<chat_id>/consent")
def get_consent(chat_id: str):
    chat = _chat(chat_id, Action.READ_CHAT)
    ledger = wiring.inbox().contacts.consent
    number = chat.phone_number_id
    start = decode_cursor(query_parameter(router, "cursor", MAX_CURSOR), HISTORY_PAGE, {"phone_number_id": number})
    if start and not start["customer_id"].startswith(chat_id + "#consent#"):
        raise BadRequest("cursor does not belong to this listing; pass the `next` value of the previous page")
    items, last = ledger.history(number, chat_id, page_size(query_parameter(router, "limit")), start)
    return {
        "chat_id": chat_id, "phone_number_id": number,
        "purposes": _purposes_view(ledger.current(number, chat_id)),
        "history": {"items": [_change_view(i) for i in items], "next": encode_cursor(last)},
    }


@router.put("/api/contacts/<chat_id>/consent")
def put_consent(chat_id: str):
    chat = _chat(chat_id, Action.CHANGE_CONSENT)
    body = _json_object()
    unexpected = sorted(set(body) - PUT_FIELDS)
    try:
        if unexpected:
            raise consent.InvalidConsent(unexpected[0], "is not a field of a consent change (purpose, state, note)")
        purpose = consent.parse_purpose(body.get("purpose"))
        state = consent.parse_state(body.get("state"))
        note = consent.parse_note(body.get("note"))
    except consent.InvalidConsent as problem:
        return _invalid(problem)
    ledger = wiring.inbox().contacts.consent
    change = consent.change(chat.phone_number_id, chat_id, purpose, state, int(ledger.clock()),
                            consent.AgentEvidence(_agent_id(), note))
    outcome = ledger.record(change)
    return {
        "chat_id": chat_id, "phone_number_id": chat.phone_number_id, "outcome": outcome.value,
        "change": {"change_id": change.change_id, "purpose": purpose, "state": state.value, "at": iso(change.at),
                   "evidence": consent.evidence_to_dict(change.evidence)},
        "purposes": _purposes_view(ledger.current(chat.phone_number_id, chat_id)),
    }


@router.post("/api/consent/imports")
def import_consent():
    from coexist.consent_import import ConsentImport, ImportRefused

    gate_of(router).allow(Action.IMPORT_CONSENT)
    content_type = (router.current_event.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type not in CSV_TYPES:
        return _json(415, {"code": "unsupported_media_type", "message": "send the CSV file as the body, Content-Type: text/csv"})
    file_name = query_parameter(router, "file_name", MAX_FILE_NAME) or "import.csv"
    imported_by = _agent_id()
    body = _raw_body()
    inbox = wiring.inbox()
    try:
        report = ConsentImport(inbox).apply(body, file_name, imported_by)
    except ImportRefused as refused:
        return _json(refused.status, {"code": refused.code, "message": str(refused)})
    return report.view()


def _raw_body() -> bytes:
    event = router.current_event
    if event.body is None:
        return b""
    if event.is_base64_encoded:
        import base64

        return base64.b64decode(event.body)
    return event.body.encode("utf-8")


def _json_object() -> dict:
    raw = _raw_body()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"the body must be at most {MAX_BODY_BYTES} bytes")
    try:
        import json

        body = json.loads(raw.decode("utf-8") or "null")
    except ValueError:
        raise BadRequest("the body must be JSON (UTF-8)") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body
