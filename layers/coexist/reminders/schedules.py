"""One-time schedules on Amazon EventBridge Scheduler: `at(…)`, deleted after they fire.

Each reminder is one schedule named by the reminder's id, in the deployment's schedule group. It
invokes the reminders function with `{"reminder_id": …}` through a role that may invoke only that
function; a failed invocation is retried, then parked in the dead-letter queue. The bot phases'
idle timers are schedules of the same kind, in a group of their own that invokes the conversation
function (coexist.conversation.workflow.IdleTimers). Local mode runs a stand-in that reads the same
schedules from the emulator and fires them (local/schedule.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from botocore.exceptions import ClientError

RETRY_ATTEMPTS = 5
MAX_EVENT_AGE_S = 3600  # a reminder an hour late is still worth sending; later, it is parked


def at_expression(unix_seconds: int) -> str:
    """Scheduler's one-time expression, in UTC (the schedule's time zone is left at its default, UTC)."""
    return "at(" + datetime.fromtimestamp(unix_seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + ")"


class OneTimeSchedules:
    def __init__(self, client, group: str, target_arn: str, role_arn: str, dead_letter_arn: str):
        self.client = client
        self.group = group
        self.target_arn = target_arn
        self.role_arn = role_arn
        self.dead_letter_arn = dead_letter_arn

    def create(self, name: str, at: int, payload: dict) -> None:
        self.client.create_schedule(Name=name, GroupName=self.group, **self._definition(at, payload))

    def put(self, name: str, at: int, payload: dict) -> None:
        """The schedule `name` set to fire at `at`, made when there is none (one that fired was
        deleted after it) and moved when there is: one request when it exists."""
        definition = self._definition(at, payload)
        try:
            self.client.update_schedule(Name=name, GroupName=self.group, **definition)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            try:
                self.client.create_schedule(Name=name, GroupName=self.group, **definition)
            except ClientError as raced:
                if raced.response.get("Error", {}).get("Code") != "ConflictException":
                    raise
                self.client.update_schedule(Name=name, GroupName=self.group, **definition)  # made meanwhile

    def _definition(self, at: int, payload: dict) -> dict:
        target = {
            "Arn": self.target_arn,
            "RoleArn": self.role_arn,
            "Input": json.dumps(payload),
            "RetryPolicy": {"MaximumRetryAttempts": RETRY_ATTEMPTS, "MaximumEventAgeInSeconds": MAX_EVENT_AGE_S},
        }
        if self.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self.dead_letter_arn}
        return {"ScheduleExpression": at_expression(at), "FlexibleTimeWindow": {"Mode": "OFF"},
                "ActionAfterCompletion": "DELETE", "Target": target}

    def delete(self, name: str) -> bool:
        """Remove a schedule; False when there was none (it fired, or was never made)."""
        try:
            self.client.delete_schedule(Name=name, GroupName=self.group)
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return False
            raise
