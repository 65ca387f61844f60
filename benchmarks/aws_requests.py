"""AWS requests per effect: counted, not timed, through the real handlers on the emulator.

A request is counted when a Coexist function makes it (the IAM contract's recorder names the
function running), per function, service and operation. What Lambda's event source mappings do
(receive and delete on the queues) is not a function's request; `benchmarks/cost.py` adds it.

Each effect is measured in the steady state a deployment lives in: the customer already known, the
number's settings cached by a warm sender, the chat's window open. `CEILINGS` are today's counts,
which tests/integration/test_aws_requests.py holds; `TARGETS` are where they should be.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
HISTORY_MESSAGES = 200


@dataclass
class Requests:
    """The requests one effect made, per (function, service, operation), divided by `per`."""

    calls: Counter = field(default_factory=Counter)
    per: int = 1

    def total(self, service: str | None = None, operations: set[str] | None = None) -> float:
        return sum(
            n for (_, s, op), n in self.calls.items() if (service is None or s == service) and (operations is None or op in operations)
        ) / self.per

    def by_operation(self) -> dict[str, float]:
        merged: Counter = Counter()
        for (_, service, operation), n in self.calls.items():
            merged[f"{service}:{operation}"] += n
        return {name: n / self.per for name, n in sorted(merged.items())}

    def summary(self) -> str:
        return ", ".join(f"{name} {n:g}" for name, n in self.by_operation().items())


class RequestCounter:
    """Counts the requests the functions make, from botocore's `before-call` event on every session
    (registered as a built-in handler, so the sessions created after `wiring.reset()` carry it)."""

    def __init__(self):
        self.calls: Counter = Counter()

    def _on_call(self, model, **_):
        from tests.contract.recorder import current_function

        function = current_function.get()
        if function is not None:
            self.calls[(function, model.service_model.service_name, model.name)] += 1

    @contextmanager
    def installed(self):
        import boto3
        from botocore import handlers

        from coexist import wiring

        entry = ("before-call", self._on_call)
        handlers.BUILTIN_HANDLERS.append(entry)
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION._session.register("before-call", self._on_call)
        wiring.reset()
        try:
            yield self
        finally:
            handlers.BUILTIN_HANDLERS.remove(entry)
            if boto3.DEFAULT_SESSION is not None:
                boto3.DEFAULT_SESSION._session.unregister("before-call", self._on_call)
            wiring.reset()

    @contextmanager
    def effect(self, per: int = 1):
        """The requests made inside the block."""
        before = Counter(self.calls)
        requests = Requests(per=per)
        yield requests
        requests.calls = self.calls - before


# --- the effects ---------------------------------------------------------------------------------

def measure_inbox_and_sending(account) -> dict[str, Requests]:
    """Inbound message, status, history import and an agent's send, in an emulated account without
    the conversation workflow (`tests.conftest.emulated_account`)."""
    from coexist import wiring
    from tests.integration.helpers import chat_of, deliver
    from benchmarks.__main__ import history_payload
    from tests.integration.test_ingest import CUSTOMER, NUMBER, status, text_message
    from tests.integration.test_outbound import FakeCloudApi, post, run_sender

    counter = RequestCounter()
    found: dict[str, Requests] = {}
    with counter.installed():
        now = int(time.time())
        deliver(account, text_message("wamid.first", now - 60))  # the customer becomes known
        with counter.effect() as found["inbound"]:
            deliver(account, text_message("wamid.second", now - 30))

        wiring.sender().transports["graph"] = cloud = FakeCloudApi()
        chat = chat_of(NUMBER, CUSTOMER)
        post({"type": "text", "text": "warming up"}, key="warm", chat=chat)
        run_sender(account)  # the sender's number settings are cached from here on, as in a warm instance
        with counter.effect() as found["send"]:
            code, _ = post({"type": "text", "text": "See you Thursday."}, key="measured", chat=chat)
            assert code == 202
            run_sender(account)
        assert len(cloud.sent) == 2, cloud.sent

        with counter.effect() as found["status"]:
            deliver(account, status("wamid.fake-2", "delivered", now))

        with counter.effect(per=HISTORY_MESSAGES) as found["history"]:
            deliver(account, history_payload(HISTORY_MESSAGES, "counted"))
    return found


# --- targets and today's ceilings ----------------------------------------------------------------

def dynamodb_writes(requests: Requests) -> float:
    return requests.total("dynamodb", WRITES)


def batch_writes(requests: Requests) -> float:
    return requests.total("dynamodb", {"BatchWriteItem"})


def sqs_sends(requests: Requests) -> float:
    return requests.total("sqs", {"SendMessage", "SendMessageBatch"})


def all_requests(requests: Requests) -> float:
    return requests.total()


@dataclass(frozen=True)
class Check:
    what: str
    count: object  # Requests -> float
    target: float | None  # where the figure should be (None: reported only)
    ceiling: float  # today's figure: a test fails above it


EFFECTS = {
    "inbound": "inbound customer message (webhook + ingest)",
    "status": "status webhook (webhook + ingest)",
    "history": "history message (bulk import, per message)",
    "send": "outbound send (API → queue → sender, besides Meta's call)",
    "bot_turn": "bot turn (conversation function, besides the bot's call)",
}

CHECKS = {
    "inbound": [
        Check("DynamoDB writes", dynamodb_writes, 3, 6),
        Check("SQS sends", sqs_sends, 1, 1),
        Check("all requests", all_requests, None, 10),
    ],
    "status": [
        Check("DynamoDB writes", dynamodb_writes, 1, 5),
        Check("all requests", all_requests, None, 10),
    ],
    "history": [
        Check("BatchWriteItem", batch_writes, 1 / 25, 0.04),
        Check("all requests", all_requests, None, 0.175),
    ],
    "send": [Check("all requests", all_requests, 4, 13)],
    "bot_turn": [Check("all requests", all_requests, 3, 15)],  # benchmarks/workflow.py measures it
}


def breaches(found: dict[str, Requests]) -> list[str]:
    """Every count above its ceiling, said plainly."""
    return [
        f"{EFFECTS[effect]}: {check.what} {check.count(found[effect]):g} > ceiling {check.ceiling:g} ({found[effect].summary()})"
        for effect, checks in CHECKS.items() if effect in found
        for check in checks if check.count(found[effect]) > check.ceiling + 1e-9
    ]


def rows(found: dict[str, Requests]) -> list[tuple[str, str]]:
    """The bench table's rows: each count with its target, then the requests it is made of."""
    table = []
    for effect, requests in found.items():
        for check in CHECKS.get(effect, []):
            value = check.count(requests)
            target = "reported" if check.target is None else f"target ≤ {check.target:g}" + (" ✓" if value <= check.target + 1e-9 else " ✗")
            table.append((f"{EFFECTS[effect]}: {check.what}", f"{value:g} ({target})"))
        table.append((f"  … {EFFECTS[effect].split(' (')[0]}: requests", requests.summary()))
    return table


def measure() -> dict[str, Requests]:
    """Every effect, each in a fresh emulated account."""
    import pytest

    from tests.conftest import emulated_account

    with pytest.MonkeyPatch.context() as patch, emulated_account(patch) as account:
        return measure_inbox_and_sending(account)


if __name__ == "__main__":
    for name, value in rows(measure()):
        print(f"{name} | {value}")
