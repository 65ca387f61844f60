"""Reminders' rules: button payloads that name a reminder, Scheduler's one-time expression, the
template message a reminder becomes, and the local stand-in firing only what is due."""

from __future__ import annotations

import json

import botocore.session
from botocore.paginate import Paginator

from coexist.domain.reminder import Button, answer_of, button_payload, is_reminder_id, new_reminder_id
from coexist.reminders.schedules import at_expression
from coexist.reminders.service import send_request
from local.schedule import OneTimeSchedules, _due_at


def test_a_button_payload_names_its_reminder_and_answer():
    reminder_id = new_reminder_id()
    assert is_reminder_id(reminder_id)
    assert answer_of(button_payload(reminder_id, Button.CONFIRM)) == (reminder_id, "confirmed")
    assert answer_of(button_payload(reminder_id, Button.RESCHEDULE)) == (reminder_id, "reschedule_requested")
    assert answer_of(button_payload(reminder_id, Button.CANCEL)) == (reminder_id, "cancelled")


def test_other_replies_name_no_reminder():
    for reply in (None, "", "csat_5", "reminder:short:confirm", f"reminder:{'r' + 'a' * 24}:maybe", "change-button"):
        assert answer_of(reply) is None


def test_the_one_time_expression_is_utc_and_reads_back():
    assert at_expression(1_800_000_000) == "at(2027-01-15T08:00:00)"
    assert _due_at(at_expression(1_800_000_000)) == 1_800_000_000


def test_a_reminder_is_its_template_with_parameters_and_a_payload_per_button():
    reminder = {"reminder_id": "r" + "b" * 24, "template": {"name": "appointment_reminder", "language": "en_US"},
                "parameters": ["Ada", "Tuesday"], "buttons": ["confirm", "cancel"]}
    request = send_request(reminder)
    body, *buttons = request.template.components
    assert request.template.body_parameters() == 2
    assert [(b["index"], b["sub_type"], b["parameters"][0]["payload"]) for b in buttons] == [
        ("0", "quick_reply", f"reminder:{'r' + 'b' * 24}:confirm"), ("1", "quick_reply", f"reminder:{'r' + 'b' * 24}:cancel")]


def _botocore_paginator(method) -> Paginator:
    """botocore's paginator for Scheduler's ListSchedules, calling `method` for each page."""
    session = botocore.session.get_session()
    operation = session.get_service_model("scheduler").operation_model("ListSchedules")
    return Paginator(method, session.get_paginator_model("scheduler").get_paginator("ListSchedules"), operation)


class FakeScheduler:
    class exceptions:
        class ResourceNotFoundException(Exception):
            pass

    def __init__(self, schedules: dict):
        self.schedules = schedules

    def list_schedules(self, GroupName):
        return {"Schedules": [{"Name": n} for n in self.schedules]}

    def get_paginator(self, operation: str):
        assert operation == "list_schedules"
        return _botocore_paginator(self.list_schedules)

    def get_schedule(self, Name, GroupName):
        return self.schedules[Name]

    def delete_schedule(self, Name, GroupName):
        del self.schedules[Name]


class Function:
    name = "reminders"

    def __init__(self, fail: bool = False):
        self.fail, self.events = fail, []

    def invoke(self, event):
        self.events.append(event)
        if self.fail:
            raise RuntimeError("down")


class Queue:
    def __init__(self):
        self.sent = []

    def send_message(self, QueueUrl, MessageBody):
        self.sent.append(MessageBody)


def schedule(at: int, reminder_id: str) -> dict:
    return {"ScheduleExpression": at_expression(at), "Target": {"Input": json.dumps({"reminder_id": reminder_id})}}


def test_the_local_stand_in_fires_what_is_due_once_and_keeps_the_rest():
    scheduler = FakeScheduler({"due": schedule(1_000, "r1"), "later": schedule(5_000, "r2")})
    function = Function()
    runner = OneTimeSchedules(function, scheduler, Queue(), "group", "dlq")
    assert runner.fire_due(now=2_000) == 1
    assert function.events == [{"reminder_id": "r1"}] and list(scheduler.schedules) == ["later"]
    assert runner.fire_due(now=2_000) == 0


class VersionedScheduler(FakeScheduler):
    """Lists as Scheduler does: a page at a time, each schedule with its creation and last update."""

    def __init__(self, schedules: dict, page_size: int = 2):
        super().__init__(schedules)
        self.page_size, self.reads, self.versions = page_size, 0, {name: 1 for name in schedules}

    def list_schedules(self, GroupName, NextToken="0"):
        names, start = list(self.schedules), int(NextToken)
        page = {"Schedules": [{"Name": n, "CreationDate": 0, "LastModificationDate": self.versions[n]}
                              for n in names[start:start + self.page_size]]}
        return {**page, "NextToken": str(start + self.page_size)} if start + self.page_size < len(names) else page

    def get_schedule(self, Name, GroupName):
        self.reads += 1
        return super().get_schedule(Name, GroupName)

    def update(self, name: str, at: int, reminder_id: str):
        self.schedules[name], self.versions[name] = schedule(at, reminder_id), self.versions[name] + 1


def test_the_local_stand_in_reads_a_waiting_schedule_once_and_again_only_when_it_changes():
    scheduler = VersionedScheduler({f"later-{i}": schedule(5_000, f"r{i}") for i in range(5)})  # three pages
    function = Function()
    runner = OneTimeSchedules(function, scheduler, Queue(), "group", "dlq")
    assert runner.fire_due(now=2_000) == 0 and scheduler.reads == 5
    assert runner.fire_due(now=2_000) == 0 and scheduler.reads == 5  # nothing changed: the list alone
    scheduler.update("later-3", 1_500, "r3-moved")  # an idle timer moved earlier
    scheduler.update("later-4", 9_000, "r4")  # and one later
    assert runner.fire_due(now=2_000) == 1 and scheduler.reads == 7
    assert function.events == [{"reminder_id": "r3-moved"}]
    assert runner.fire_due(now=6_000) == 3 and sorted(scheduler.schedules) == ["later-4"]
    assert runner.fire_due(now=9_000) == 1 and scheduler.schedules == {}


def test_the_local_stand_in_parks_a_schedule_that_keeps_failing():
    scheduler, queue = FakeScheduler({"due": schedule(1_000, "r1")}), Queue()
    runner = OneTimeSchedules(Function(fail=True), scheduler, queue, "group", "dlq", attempts=2)
    assert runner.fire_due(now=2_000) == 0 and "due" in scheduler.schedules  # retried on the next look
    assert runner.fire_due(now=2_000) == 1 and scheduler.schedules == {}
    assert queue.sent == [json.dumps({"reminder_id": "r1"})]

