"""The agent is told an hour before the customer-service window closes: the conversation step with
an injected clock over the real chat table, once per window (a retry counts nothing twice, a new
customer message opens a new window and a new warning), the template offered, and the chat as the
agent API shows it (the console's banner reads it)."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from coexist import wiring
from coexist.store.chats import ChatRepository
from tests.integration.helpers import api, chat_of, deliver
from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message

HOUR, DAY = 3600, 24 * 3600
SETTINGS = {"window_warning_s": HOUR, "agent_idle_s": 2 * DAY, "window_warning_template": "appointment_reminder:en_US"}


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def steps(aws, monkeypatch):
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps(SETTINGS))
    wiring.reset()
    clock = Clock(time.time())
    counted: list[str] = []
    built = wiring.conversation_steps(counted.append)
    chats = ChatRepository(aws.dynamodb.Table(aws.env["CHATS_TABLE"]), clock=clock)
    return dataclasses.replace(built, chats=chats, clock=clock), clock, counted, aws


def run(steps, action: str) -> dict:
    return steps.run({"action": action, "chat_id": chat_of(NUMBER, CUSTOMER), "conversation_id": "conv-1"})


def chat_view() -> dict:
    code, body = api(f"/api/chats/{chat_of(NUMBER, CUSTOMER)}")
    assert code == 200, body
    return body


def test_the_agent_is_warned_an_hour_before_once_per_window_with_the_template(steps):
    steps, clock, counted, aws = steps
    start = int(clock.now)
    deliver(aws, text_message("wamid.w1", start - 21 * HOUR))  # the window closes in three hours
    # The agent's wait is planned to end when the warning is due, not at the idle timeout.
    assert run(steps, "agent_plan") == {"seconds": 2 * HOUR}
    clock.now = start + HOUR + 59 * 60  # not yet: the warning is due at start + 2 h
    assert run(steps, "agent_check") == {"idle": False} and counted == []
    assert chat_view()["window_closing"] is None

    clock.now = start + 2 * HOUR + 60
    run(steps, "agent_check")
    run(steps, "agent_check")  # a retried step, or a second wake: nothing twice
    assert counted == ["WindowClosingWarning"]
    closing = chat_view()["window_closing"]
    assert closing["closes_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 3 * HOUR))
    assert closing["template"] == {"name": "appointment_reminder", "language": "en_US"}
    # Warned: the next wake is the idle timeout again, not the same warning.
    assert run(steps, "agent_plan")["seconds"] > 2 * HOUR


def test_a_new_customer_message_opens_a_new_window_and_a_new_warning(steps):
    steps, clock, counted, aws = steps
    start = int(clock.now)
    deliver(aws, text_message("wamid.w1", start - 23 * HOUR - 30 * 60))  # closes in 30 minutes: warn now
    run(steps, "agent_check")
    assert counted == ["WindowClosingWarning"]
    deliver(aws, text_message("wamid.w2", start))  # the customer writes again: a fresh 24 h
    assert chat_view()["window_closing"] is None  # the old warning was for the old window
    assert run(steps, "agent_plan") == {"seconds": 23 * HOUR}
    clock.now = start + 23 * HOUR + 5
    run(steps, "agent_check")
    assert counted == ["WindowClosingWarning", "WindowClosingWarning"]


def test_no_warning_once_the_window_has_closed(steps):
    steps, clock, counted, aws = steps
    deliver(aws, text_message("wamid.w1", int(clock.now) - 25 * HOUR))
    run(steps, "agent_check")
    assert counted == []
    assert chat_view()["window_closing"] is None
