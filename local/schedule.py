"""EventBridge's scheduled rules, as a thread: invoke a function with a "Scheduled Event" every N s.

Local mode uses it for the templates sync (deployed: a rate(…) rule). The first run is made by
the caller, synchronously, before local mode says it is ready, so the templates table is filled
by the time anything can send a template; the thread then repeats it every `every_s` seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

from local.emulator import REGION
from local.lambdas import ACCOUNT_ID, LocalFunction

log = logging.getLogger("local")


def scheduled_event(rule_name: str) -> dict:
    """The event EventBridge sends a target of a schedule rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


class Schedule(threading.Thread):
    def __init__(self, function: LocalFunction, every_s: float, rule_name: str):
        super().__init__(name=f"schedule-{function.name}", daemon=True)
        self.function = function
        self.every_s = every_s
        self.rule_name = rule_name
        self._stopping = threading.Event()

    def invoke_once(self) -> bool:
        """One scheduled invocation; a failure is logged (EventBridge would just try next time)."""
        try:
            self.function.invoke(scheduled_event(self.rule_name))
            return True
        except Exception:
            log.exception("%s: scheduled invocation failed", self.function.name)
            return False

    def run(self) -> None:
        while not self._stopping.wait(self.every_s):
            self.invoke_once()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)


class OneTimeSchedules(threading.Thread):
    """EventBridge Scheduler's one-time schedules (`at(…)`, deleted after completion), as a thread.

    The layer creates and deletes schedules in the emulator exactly as deployed (moto keeps them but
    never fires them); this stand-in looks at the group every `every_s` seconds, invokes the
    function with each due schedule's input, and deletes the schedule, as ActionAfterCompletion
    DELETE does. An invocation that fails is retried on the next look, up to `attempts`, then its
    input goes to the dead-letter queue, as Scheduler's retry policy would.
    """

    def __init__(self, function: LocalFunction, scheduler, sqs, group: str, dead_letter_url: str,
                 every_s: float = 1.0, attempts: int = 3):
        super().__init__(name=f"schedules-{group}", daemon=True)
        self.function, self.scheduler, self.sqs = function, scheduler, sqs
        self.group, self.dead_letter_url = group, dead_letter_url
        self.every_s, self.attempts = every_s, attempts
        self.failures: dict[str, int] = {}
        # Each schedule as last read, by name: (its version in the list, when it is due, its input).
        # A schedule is read again only when the list shows it changed (made again, or updated: a
        # conversation's idle timer moves with each customer message), so a look at a group of
        # waiting timers is one list call rather than a read of every one of them every second.
        self._read: dict[str, tuple[tuple, float, str]] = {}
        self._stopping = threading.Event()

    @classmethod
    def of_group(cls, function: LocalFunction, session, group: str, dead_letter_arn: str, every_s: float = 1.0) -> "OneTimeSchedules":
        """The stand-in for a group the emulator made (local.emulator), its dead-letter queue named by
        the ARN the stacks give whoever makes the group's schedules."""
        sqs = session.client("sqs")
        dead_letters = sqs.get_queue_url(QueueName=dead_letter_arn.rsplit(":", 1)[-1])["QueueUrl"]
        return cls(function, session.client("scheduler"), sqs, group, dead_letters, every_s=every_s)

    def fire_due(self, now: float | None = None) -> int:
        """Fire every schedule of the group that is due; how many were fired."""
        now = time.time() if now is None else now
        fired = 0
        listed = self._listed()
        for gone in self._read.keys() - listed.keys():
            del self._read[gone]
        for name, version in listed.items():
            known = self._read.get(name)
            if known is None or known[0] != version or version == (None, None):  # a list without dates says nothing
                try:
                    schedule = self.scheduler.get_schedule(Name=name, GroupName=self.group)
                except self.scheduler.exceptions.ResourceNotFoundException:
                    continue  # deleted meanwhile (a reminder cancelled)
                known = self._read[name] = (version, _due_at(schedule["ScheduleExpression"]), schedule["Target"].get("Input") or "{}")
            _, due_at, payload = known
            if due_at > now:
                continue
            try:
                self.function.invoke(json.loads(payload))
            except Exception:
                log.exception("%s: schedule %s failed", self.function.name, name)
                self.failures[name] = self.failures.get(name, 0) + 1
                if self.failures[name] < self.attempts:
                    continue
                self.sqs.send_message(QueueUrl=self.dead_letter_url, MessageBody=payload)
            self.scheduler.delete_schedule(Name=name, GroupName=self.group)
            self.failures.pop(name, None)
            self._read.pop(name, None)
            fired += 1
        return fired

    def _listed(self) -> dict[str, tuple]:
        """The group's schedules, every page of them, each with what says it changed."""
        pages = self.scheduler.get_paginator("list_schedules").paginate(GroupName=self.group)
        return {s["Name"]: (s.get("CreationDate"), s.get("LastModificationDate"))
                for page in pages for s in page.get("Schedules", [])}

    def run(self) -> None:
        while not self._stopping.wait(self.every_s):
            try:
                self.fire_due()
            except Exception:
                log.exception("one-time schedules: look failed")

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)


def _due_at(expression: str) -> float:
    """The time of an `at(yyyy-mm-ddThh:mm:ss)` expression (UTC), as Unix seconds."""
    from datetime import datetime, timezone

    stamp = expression.strip().removeprefix("at(").removesuffix(")")
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
