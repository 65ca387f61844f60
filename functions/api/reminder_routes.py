"""Reminders on the agent API: schedule one (`POST /api/reminders`), read it, cancel it.

Scheduling a reminder is sending into the customer's chat, later: the caller needs the right to
send there (an agent, into chats of its numbers nobody else holds; see README, Who may do what).
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from coexist import wiring
from coexist.authorization import gate_of
from coexist.domain.access import Action
from coexist.domain.reminder import is_reminder_id
from coexist.reads import BadRequest, NotFound

router = APIGatewayRouter()
MAX_BODY_BYTES = 64 * 1024  # the agent API's limit on a JSON body


def _reminder(reminder_id: str, action: Action) -> dict:
    found = wiring.reminders().store.get(reminder_id) if is_reminder_id(reminder_id) else None
    if found is None:
        raise NotFound(f"reminder {reminder_id[:40]} not found")
    gate_of(router).chat(found["chat_id"], action)
    return found


@router.post("/api/reminders")
def schedule_reminder():
    import json

    from pydantic import ValidationError

    from coexist.reminders.service import ReminderRefused, ReminderRequest, view

    try:
        raw = router.current_event.decoded_body or ""
        if len(raw.encode()) > MAX_BODY_BYTES:
            raise BadRequest(f"the body must be at most {MAX_BODY_BYTES} bytes")
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        request = ReminderRequest.model_validate(body)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        return Response(422, content_types.APPLICATION_JSON, {
            "code": "invalid_reminder", "message": f"{'.'.join(str(p) for p in first['loc']) or 'body'}: {first['msg']}"})
    chat_id = request.chat_id
    if request.wa_id:
        gate_of(router).number(request.phone_number_id, Action.LIST_CHATS)
        found = wiring.inbox_reader().chat_by_identifier(request.phone_number_id, request.wa_id, None)["items"]
        if not found:
            raise NotFound("no chat with this customer on this number (the customer has not written yet)")
        chat_id = found[0]["chat_id"]
    facts = gate_of(router).chat(chat_id, Action.SEND)
    if facts.phone_number_id != request.phone_number_id:
        raise NotFound(f"chat {chat_id} is not a chat of number {request.phone_number_id}")
    try:
        reminder = wiring.reminders().schedule(request, chat_id, gate_of(router).principal.agent_id)
    except ReminderRefused as refused:
        return Response(refused.http_status, content_types.APPLICATION_JSON, {"code": refused.code, "message": refused.message})
    return Response(201, content_types.APPLICATION_JSON, view(reminder))


@router.get("/api/reminders/<reminder_id>")
def get_reminder(reminder_id: str):
    from coexist.reminders.service import view

    return view(_reminder(reminder_id, Action.READ_CHAT))


@router.delete("/api/reminders/<reminder_id>")
def cancel_reminder(reminder_id: str):
    from coexist.domain.reminder import ReminderStatus
    from coexist.reminders.service import view

    _reminder(reminder_id, Action.SEND)
    reminder = wiring.reminders().cancel(reminder_id)
    if reminder["status"] != ReminderStatus.CANCELLED:
        return Response(409, content_types.APPLICATION_JSON, {
            "code": "not_cancellable", "message": f"The reminder is {reminder['status']}: only a scheduled reminder can be cancelled."})
    return view(reminder)
