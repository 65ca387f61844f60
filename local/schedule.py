"""EventBridge's scheduled rules, as a thread: invoke a function with a "Scheduled Event" every N s.

Local mode uses it for the templates sync (deployed: a rate(…) rule). The first run is made by
the caller, synchronously, before local mode says it is ready, so the templates table is filled
by the time anything can send a template; the thread then repeats it every `every_s` seconds.
"""

from __future__ import annotations

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
