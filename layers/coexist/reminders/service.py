"""Reminders: schedule one, cancel it, send it when its time comes, record the customer's answer.

Sending goes through the normal outbound path (the outbox: policy, then the queue; the sender's
pacing), as a template whose quick-reply buttons carry payloads naming the reminder, under the
consent purpose `reminders`. The send is keyed by the reminder, so a schedule that fires twice
(Scheduler is at least once) sends one message.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from coexist.domain.records import Source
from coexist.domain.reminder import PURPOSE, Button, ReminderStatus, button_payload, new_reminder_id
from coexist.events.models import ReminderAnswered, iso
from coexist.outbound.requests import Template, TemplateRequest

MIN_LEAD_S = 2  # a reminder is for later: at least this far ahead
MAX_LEAD_S = 365 * 24 * 3600  # Scheduler takes any date; a year ahead is a mistake more often than a plan


class ReminderRequest(BaseModel):
    """POST /api/reminders."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    phone_number_id: str = Field(min_length=1, max_length=128, pattern=r"^\d+$")
    chat_id: str | None = Field(None, max_length=128, description="the customer's chat; or wa_id")
    wa_id: str | None = Field(None, max_length=32, pattern=r"^\d{5,20}$", description="the customer's phone number; or chat_id")
    template: Template = Field(description="an approved template: name and language; its quick-reply buttons answer the reminder")
    parameters: list[str] = Field(default_factory=list, max_length=20, description="the template body's parameters, in order")
    send_at: datetime = Field(description="when to send it (ISO 8601 with a time zone)")
    buttons: list[Literal["confirm", "reschedule", "cancel"]] = Field(
        default_factory=lambda: ["confirm", "reschedule", "cancel"], max_length=3,
        description="what the template's quick-reply buttons mean, in their order",
    )

    @field_validator("parameters")
    @classmethod
    def _short(cls, parameters: list[str]) -> list[str]:
        if any(not p or len(p) > 1024 for p in parameters):
            raise ValueError("each parameter is 1 to 1024 characters")
        return parameters

    @model_validator(mode="after")
    def _one_customer(self) -> "ReminderRequest":
        if bool(self.chat_id) == bool(self.wa_id):
            raise ValueError("name the customer by chat_id or by wa_id (one of them)")
        if self.send_at.tzinfo is None:
            raise ValueError("send_at needs a time zone (e.g. 2027-01-15T09:00:00Z)")
        if len(set(self.buttons)) != len(self.buttons):
            raise ValueError("each button means a different answer")
        return self


class ReminderRefused(Exception):
    def __init__(self, code: str, message: str, http_status: int = 422):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


def send_request(reminder: dict) -> TemplateRequest:
    """The template message of a reminder: its body parameters, and a payload per quick-reply button."""
    components: list[dict] = []
    if reminder.get("parameters"):
        components.append({"type": "body", "parameters": [{"type": "text", "text": p} for p in reminder["parameters"]]})
    for index, button in enumerate(reminder.get("buttons") or []):
        components.append({"type": "button", "sub_type": "quick_reply", "index": str(index),
                           "parameters": [{"type": "payload", "payload": button_payload(reminder["reminder_id"], Button(button))}]})
    template = Template.model_validate({"name": reminder["template"]["name"], "language": reminder["template"]["language"],
                                       "components": components})
    return TemplateRequest(type="template", template=template)


@dataclass
class Reminders:
    store: object  # coexist.store.reminders.ReminderStore
    schedules: object  # coexist.reminders.schedules.OneTimeSchedules
    outbox: object  # coexist.outbound.outbox.Outbox
    chats: object  # coexist.store.chats.ChatRepository
    events: object  # coexist.events.publisher.EventPublisher
    clock: object = time.time

    def schedule(self, request: ReminderRequest, chat_id: str, created_by: str | None) -> dict:
        now = int(self.clock())
        # Scheduler's `at(…)` counts whole seconds: round up, never send before the time asked.
        send_at = math.ceil(request.send_at.timestamp())
        if not now + MIN_LEAD_S <= send_at <= now + MAX_LEAD_S:
            raise ReminderRefused("bad_send_at", f"send_at must be between {MIN_LEAD_S} s and a year from now")
        reminder_id = new_reminder_id()
        item = {
            "reminder_id": reminder_id, "phone_number_id": request.phone_number_id, "chat_id": chat_id,
            "template": {"name": request.template.name, "language": request.template.language.code},
            "parameters": request.parameters, "buttons": list(request.buttons), "send_at": send_at,
            "status": ReminderStatus.SCHEDULED.value, "created_at": now, "created_by": created_by,
        }
        send_request(item)  # a request the outbox could not take fails here, not at send time
        self.store.create(item)
        try:
            self.schedules.create(reminder_id, send_at, {"reminder_id": reminder_id})
        except Exception:
            self.store.mark_failed(reminder_id, "not_scheduled", now)  # nothing will ever send it
            raise
        return item

    def cancel(self, reminder_id: str) -> dict | None:
        """Cancel before its time: the schedule is removed. The reminder as it is now (None: unknown)."""
        if self.store.cancel(reminder_id, int(self.clock())):
            self.schedules.delete(reminder_id)
        return self.store.get(reminder_id)

    def fire(self, reminder_id: str) -> str:
        """Its time came: send it through the outbox. What happened, for the function's log."""
        from coexist.outbound.outbox import ChatNotFound, Refused

        reminder = self.store.get(reminder_id)
        if reminder is None:
            return "unknown"
        if reminder["status"] != ReminderStatus.SCHEDULED:
            return f"already_{reminder['status']}"
        try:
            accepted = self.outbox.send(reminder["chat_id"], send_request(reminder), source=Source.API,
                                        idempotency_key=f"reminder:{reminder_id}", sent_by=f"reminder:{reminder_id}", purpose=PURPOSE)
        except Refused as refused:
            self.store.mark_failed(reminder_id, refused.refusal.code, int(self.clock()))
            return "refused"
        except ChatNotFound:
            self.store.mark_failed(reminder_id, "chat_not_found", int(self.clock()))
            return "refused"
        self.store.mark_sent(reminder_id, accepted.message["id"], int(self.clock()))
        return "sent"

    def answered(self, reminder_id: str, answer: str, message_id: str, chat_id: str, at: int) -> bool:
        """The customer tapped one of the reminder's buttons: record it, tell the CRM; a request to
        reschedule leaves the reminder on the chat, for the bot or the person who takes it."""
        known = self.store.get(reminder_id)
        if known is None or known.get("chat_id") != chat_id:  # only its own customer answers a reminder
            return False
        reminder = self.store.record_answer(reminder_id, answer, message_id, at)
        first = reminder is not None
        if not first:
            if known.get("answer_message_id") != message_id:
                return False  # unknown meanwhile, or answered since by another reply
            # This reply was recorded already: a retried webhook, perhaps after the first attempt
            # failed between the record and what follows it. What follows is repeated: the chat's
            # note is the same write, the event the same id (a CRM dedupes on it).
            reminder = known
        if answer == "reschedule_requested":
            self.chats.note_reminder(chat_id, {"reminder_id": reminder_id, "template": reminder["template"]["name"],
                                               "send_at": reminder["send_at"], "answer": answer, "answered_at": at})
        self.events.publish(ReminderAnswered(phone_number_id=reminder["phone_number_id"], reminder_id=reminder_id,
                                             chat_id=chat_id, answer=answer, message_id=message_id, occurred_at=iso(at)))
        return first


def view(reminder: dict) -> dict:
    """A reminder as the API shows it."""
    shown = {k: v for k, v in reminder.items() if k not in ("created_by",)}
    for name in ("send_at", "created_at", "sent_at", "cancelled_at", "failed_at", "answered_at"):
        if isinstance(shown.get(name), int):
            shown[name] = iso(shown[name])
    return shown
