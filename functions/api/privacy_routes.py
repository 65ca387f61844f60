"""A customer's rights (admins): an export of everything held about them, erasure, and the legal
hold that suspends erasure. Every call passes the gate, so the audit trail records it.

- `POST /api/chats/{chat_id}/exports` → 202 `{export_id, status: "pending"}`; built asynchronously
- `GET /api/exports/{export_id}` → its status, and when `done` a presigned URL good for 15 minutes
- `POST /api/chats/{chat_id}/erasure` → what was erased, and until when the Object Lock archive
  keeps the webhook bodies (`archive_retained_until`); 409 `legal_hold` while a hold is set
- `PUT /api/chats/{chat_id}/legal-hold` (`{"reason": …}`) / `DELETE …/legal-hold`
"""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from coexist import wiring
from coexist.authorization import gate_of
from coexist.domain.access import Action, ChatFacts
from coexist.domain.audit import SHARED_TOKEN_ACTOR
from coexist.reads import MAX_ID, BadRequest, NotFound

router = APIGatewayRouter()
MAX_REASON = 500


def _id(value: str, name: str) -> str:
    if not value or len(value) > MAX_ID or any(ord(c) < 32 for c in value):
        raise BadRequest(f"{name} must be a string of at most {MAX_ID} printable characters")
    return value


def _caller() -> str:
    return gate_of(router).principal.agent_id or SHARED_TOKEN_ACTOR


def _json(status: int, body: dict) -> Response:
    return Response(status, content_types.APPLICATION_JSON, body)


@router.post("/api/chats/<chat_id>/exports")
def request_export(chat_id: str):
    gate_of(router).chat(_id(chat_id, "chat_id"), Action.EXPORT)
    job = wiring.customer_rights().request_export(chat_id, _caller())
    wiring.exports_queue().send_message(
        QueueUrl=wiring.settings().exports_queue_url, MessageBody=json.dumps({"export_id": job["export_id"]}),
    )
    return _json(202, _export_view(job))


@router.get("/api/exports/<export_id>")
def export_status(export_id: str):
    job = wiring.customer_rights().store.export(_id(export_id, "export_id"))
    if job is None:
        # Asked and recorded all the same: a non-admin is refused rather than told it does not exist.
        gate_of(router).allow(Action.READ_EXPORT, ChatFacts(None, None), detail={"export_id": export_id})
        raise NotFound(f"export {export_id} not found")
    gate_of(router).chat(job["chat_id"], Action.READ_EXPORT, detail={"export_id": export_id})
    view = _export_view(job)
    if job["status"] == "done":
        from coexist.resources import EXPORT_URL_EXPIRES_S

        view["url"] = wiring.export_files().generate_presigned_url(
            "get_object", Params={"Bucket": wiring.settings().exports_bucket, "Key": job["object_key"]},
            ExpiresIn=EXPORT_URL_EXPIRES_S,
        )
        view["url_expires_in_s"] = EXPORT_URL_EXPIRES_S
    return view


def _export_view(job: dict) -> dict:
    return {k: job.get(k) for k in ("export_id", "chat_id", "status", "requested_by", "requested_at", "completed_at", "failure")}


@router.post("/api/chats/<chat_id>/erasure")
def erase(chat_id: str):
    from coexist.privacy import LegalHold

    gate_of(router).chat(_id(chat_id, "chat_id"), Action.ERASE)
    try:
        return wiring.customer_rights().erase(chat_id, _caller())
    except LegalHold as held:
        return _json(409, {"code": "legal_hold", "message": str(held), "legal_hold": held.hold})


@router.put("/api/chats/<chat_id>/legal-hold")
def set_legal_hold(chat_id: str):
    gate_of(router).chat(_id(chat_id, "chat_id"), Action.SET_LEGAL_HOLD)
    try:
        body = router.current_event.json_body if router.current_event.body else {}
    except ValueError:
        raise BadRequest("the body must be JSON") from None
    reason = (body or {}).get("reason") if isinstance(body, dict) else None
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise BadRequest(f"reason must be a string of at most {MAX_REASON} characters")
    return wiring.customer_rights().set_hold(chat_id, _caller(), reason)


@router.delete("/api/chats/<chat_id>/legal-hold")
def clear_legal_hold(chat_id: str):
    gate_of(router).chat(_id(chat_id, "chat_id"), Action.CLEAR_LEGAL_HOLD)
    wiring.customer_rights().clear_hold(chat_id)
    return {"chat_id": chat_id, "legal_hold": None}
