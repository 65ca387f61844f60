"""Fault knobs: make the sandbox fail the way Meta and networks fail, on demand.

    {"recipient": "16505550001", "code": 131026}                 every send to that customer fails
    {"recipient": "16505550001", "code": 131049, "times": 1,     the next one only, and as Meta does
     "as": "status"}                                              for 131049: accepted, then `failed`
    {"http_5xx": 2, "status": 503}                                the next 2 sends answer 5xx
    {"timeouts": 1, "seconds": 15, "accept": true}                the next send hangs 15 s (accept: it
                                                                  was sent all the same — the ambiguous case)
    {"status_order": "reverse", "duplicate_statuses": 1}          read before delivered before sent, twice each
    {"status_delays": [0.05, 0.1, 0.2]}
    {"statuses": false}                                             accept messages, send no status webhooks
    {"read_receipts": false}                                      customers with read receipts off: sent and
                                                                  delivered, never read (as Meta sends them)
    {"clear": true}                                               back to no faults

Keys may be combined in one document. Not thread-safe by itself: used under the sandbox's lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from local.meta_sandbox.statuses import DEFAULT_DELAYS_S

KNOWN_KEYS = {"statuses", "recipient", "code", "times", "as", "http_5xx", "status", "timeouts", "seconds", "accept", "status_order", "duplicate_statuses", "status_delays", "read_receipts", "clear"}


@dataclass
class RecipientFault:
    code: int
    remaining: int | None = None  # None: until cleared
    as_status: bool = False  # accepted, then a `failed` status webhook carries the error


@dataclass
class Hang:
    seconds: float
    accept: bool


class Faults:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.recipients: dict[str, RecipientFault] = {}
        self.http_5xx = 0
        self.http_5xx_status = 500
        self.timeouts = 0
        self.timeout = Hang(seconds=15.0, accept=False)
        self.status_order = "in_order"
        self.duplicate_statuses = 0
        self.status_delays: tuple[float, float, float] = DEFAULT_DELAYS_S
        self.send_statuses = True  # False: accept messages without status webhooks (benchmarks of sending alone)
        self.read_receipts = True  # False: no `read` status (a customer who turned read receipts off)

    def configure(self, spec: dict) -> None:
        """Apply one knob document (see the module docstring); ValueError if it makes no sense."""
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        unknown = set(spec) - KNOWN_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if spec.get("clear"):
            self.clear()
        if "recipient" in spec:
            digits = re.sub(r"\D", "", str(spec["recipient"]))
            if not digits or "code" not in spec:
                raise ValueError("a recipient fault needs a recipient number and a code")
            times = spec.get("times")
            delivery = spec.get("as", "response")
            if delivery not in ("response", "status"):
                raise ValueError("'as' is 'response' or 'status'")
            self.recipients[digits] = RecipientFault(int(spec["code"]), int(times) if times is not None else None, delivery == "status")
        if "http_5xx" in spec:
            self.http_5xx = int(spec["http_5xx"])
            self.http_5xx_status = int(spec.get("status", 500))
            if not 500 <= self.http_5xx_status <= 599:
                raise ValueError("status must be a 5xx")
        if "timeouts" in spec:
            self.timeouts = int(spec["timeouts"])
            self.timeout = Hang(float(spec.get("seconds", 15.0)), bool(spec.get("accept", False)))
        if "status_order" in spec:
            if spec["status_order"] not in ("in_order", "reverse"):
                raise ValueError("status_order is 'in_order' or 'reverse'")
            self.status_order = spec["status_order"]
        if "statuses" in spec:
            self.send_statuses = bool(spec["statuses"])
        if "read_receipts" in spec:
            if not isinstance(spec["read_receipts"], bool):
                raise ValueError("read_receipts is true or false")
            self.read_receipts = spec["read_receipts"]
        if "duplicate_statuses" in spec:
            self.duplicate_statuses = max(0, int(spec["duplicate_statuses"]))
        if "status_delays" in spec:
            delays = tuple(float(d) for d in spec["status_delays"])
            if len(delays) != 3 or min(delays) < 0:
                raise ValueError("status_delays is three non-negative numbers of seconds")
            self.status_delays = delays  # type: ignore[assignment]

    def take_recipient(self, wa_id: str) -> RecipientFault | None:
        fault = self.recipients.get(wa_id)
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                del self.recipients[wa_id]
        return fault

    def take_5xx(self) -> int | None:
        if self.http_5xx <= 0:
            return None
        self.http_5xx -= 1
        return self.http_5xx_status

    def take_timeout(self) -> Hang | None:
        if self.timeouts <= 0:
            return None
        self.timeouts -= 1
        return self.timeout

    def describe(self) -> dict:
        return {
            "recipients": len(self.recipients),  # counts only: customer numbers stay out of answers and logs
            "http_5xx": self.http_5xx,
            "timeouts": self.timeouts,
            "status_order": self.status_order,
            "duplicate_statuses": self.duplicate_statuses,
            "status_delays": list(self.status_delays),
            "statuses": self.send_statuses,
            "read_receipts": self.read_receipts,
        }
