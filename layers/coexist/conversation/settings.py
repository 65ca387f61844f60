"""Timings and texts of the conversation workflow, from `COEXIST_CONVERSATION` (JSON)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class ConversationSettings:
    takeover_cool_down_s: int = 1800  # the bot stays quiet this long after the last human reply
    customer_idle_s: int = 24 * 3600  # a bot conversation with no customer message ends after this
    accept_timeout_s: int = 120  # an offered chat goes to the next agent after this
    assign_retry_s: int = 30  # wait between routing rounds when nobody is available
    max_assign_attempts: int = 3
    agent_idle_s: int = 3600  # an agent conversation with no message either way is closed after this
    window_warning_s: int = 3600  # warn the agent this long before the customer-service window closes
    # "name:language": the template the warning offers the agent, to keep talking once the window closes
    window_warning_template: str | None = None
    survey: bool = True
    survey_timeout_s: int = 3600
    survey_question: str = "How did we do today?"
    unassigned_text: str = "Thanks for your patience. Everyone on our team is busy right now; we will reply as soon as someone is free."
    unassigned_template: str | None = None  # "name:language", used when the window is closed
    intent_skills: dict = field(default_factory=dict)  # bot intent → agent skill
    # A chat handed to Amazon Connect whose end we never hear of is closed after this: longer than
    # Connect's default chat duration (25 h), so Connect normally ends it first.
    connect_timeout_s: int = 26 * 3600

    @classmethod
    def from_environ(cls, environ=os.environ) -> "ConversationSettings":
        raw = json.loads(environ.get("COEXIST_CONVERSATION") or "{}")
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown COEXIST_CONVERSATION keys: {sorted(unknown)}")
        return cls(**raw)

    def timeouts(self) -> dict:
        """What the workflow's waits read: the execution's input, given by ingest when it starts one."""
        return {
            "customer_idle_seconds": self.customer_idle_s,
            "accept_timeout_seconds": self.accept_timeout_s,
            "assign_retry_seconds": self.assign_retry_s,
            # Not a wait of today's definition (the survey's deadline is on the chat), but the
            # definition before reads it: an execution started while an upgrade rolls out may run it.
            "survey_timeout_seconds": self.survey_timeout_s,
            "connect_timeout_seconds": self.connect_timeout_s,
        }
