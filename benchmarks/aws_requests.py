"""AWS requests per effect: counted, not timed, through the real handlers on the emulator.

A request is counted when a Coexist function makes it (the IAM contract's recorder names the
function running), per function, service and operation. What Lambda's event source mappings do
(receive and delete on the queues) is not a function's request; `benchmarks/cost.py` adds it.

Each effect is measured in the steady state a deployment lives in: the customer already known, the
number's settings cached by a warm sender, the chat's window open. Each of `CHECKS` has a target
(where the count should be) and a ceiling (today's count, which tests/integration/test_aws_requests.py
and test_workflow_counts.py hold).
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

from benchmarks.cost import STATUSES_PER_SEND
from benchmarks.dynamodb_units import ItemSizes

# What a Step Functions task token weighs on AWS, for the chat items that carry one (the emulator's
# are a few dozen bytes): the tokens of `.waitForTaskToken` tasks seen in published code are 684
# characters (SendTaskSuccess takes up to 2,048). Nothing here sees a deployed token: like the price
# table's assumptions, a figure to check.
DEPLOYED_TOKEN_BYTES = 684
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
HISTORY_MESSAGES = 200
# Bodies per raw archive object: what a five-minute batching window gathers at a million webhooks a
# month (0.38 a second). More traffic fills batches faster (up to 1,000 bodies, or 6 MB); less makes
# them smaller, each object costing one S3 PUT and one invocation.
RAW_ARCHIVE_BATCH = 115
# Meta's pricing of a free-form reply inside the customer-service window, on its `sent` status.
PMP_SERVICE = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}


@dataclass
class Requests:
    """What one effect cost, divided by `per`: the requests per (function, service, operation), and
    for the cost model (benchmarks/cost.py) per function: DynamoDB capacity units, bytes archived,
    invocations, seconds in the handler and in AWS calls, bytes logged."""

    calls: Counter = field(default_factory=Counter)
    per: int = 1
    units: Counter = field(default_factory=Counter)  # (function, "wru"|"rru"|"s3_bytes")
    invocations: Counter = field(default_factory=Counter)
    handler_s: Counter = field(default_factory=Counter)
    in_calls_s: Counter = field(default_factory=Counter)
    log_bytes: Counter = field(default_factory=Counter)

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

    def functions(self) -> set[str]:
        return {f for f, _, _ in self.calls} | set(self.invocations)

    def compute_s(self, function: str) -> float:
        """Seconds per invocation in the handler's own code: the emulator's time taken out."""
        if not self.invocations[function]:
            return 0.0
        return max(0.0, self.handler_s[function] - self.in_calls_s[function]) / self.invocations[function]


_CAPACITY_READS = {"GetItem", "Query", "Scan"}


def _read_units(operation: str, params: dict) -> tuple[str, float] | None:
    """Read units a DynamoDB call consumes, for items under 4 KB (writes are sized: `_write_began`)."""
    read = 1 if params.get("ConsistentRead") else 0.5
    if operation in _CAPACITY_READS:
        return "rru", read
    if operation == "BatchGetItem":
        return "rru", sum(len(v.get("Keys", [])) * (1 if v.get("ConsistentRead") else 0.5) for v in params.get("RequestItems", {}).values())
    return None


def _size(body) -> int:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if hasattr(body, "seek") and hasattr(body, "tell"):
        at = body.tell()
        size = body.seek(0, io.SEEK_END) - at
        body.seek(at)
        return size
    return 0


class _LogBytes(logging.Handler):
    def __init__(self, counter: "RequestCounter", function: str, formatter):
        super().__init__()
        self.counter, self.function = counter, function
        self.setFormatter(formatter)

    def emit(self, record):
        self.counter.log_bytes[self.function] += len(self.format(record).encode()) + 1


class _StdoutBytes(io.TextIOBase):
    """What the functions print (their CloudWatch metrics, EMF), counted per function."""

    def __init__(self, counter: "RequestCounter", passthrough):
        self.counter, self.passthrough = counter, passthrough

    def write(self, text: str) -> int:
        from tests.contract.recorder import current_function

        function = current_function.get()
        if function is not None:
            self.counter.log_bytes[function] += len(text.encode())
        return len(text)


def _running_function() -> str | None:
    from tests.contract.recorder import current_function

    return current_function.get()


class RequestCounter:
    """Counts the requests the functions make, from botocore's events on every session (registered
    as built-in handlers, so the sessions created after `wiring.reset()` carry them), and times the
    handlers and their calls."""

    FUNCTIONS = ("webhook", "ingest", "raw_archive", "api", "sender", "conversation")

    def __init__(self, token_bytes: int = DEPLOYED_TOKEN_BYTES, function_of=None):
        self.sizes = ItemSizes(token_bytes)
        # Which function makes a call: the one whose handler runs (the IAM contract's recorder knows).
        self._function = function_of or _running_function
        self.calls: Counter = Counter()
        self.units: Counter = Counter()
        self.invocations: Counter = Counter()
        self.handler_s: Counter = Counter()
        self.in_calls_s: Counter = Counter()
        self.log_bytes: Counter = Counter()
        self._started = threading.local()

    def _on_params(self, params, model, **_):
        function = self._function()
        if function is None:
            return
        service = model.service_model.service_name
        self.calls[(function, service, model.name)] += 1
        if service == "dynamodb" and (found := _read_units(model.name, params)):
            self.units[(function, found[0])] += found[1]
        if service == "s3" and model.name == "PutObject":
            self.units[(function, "s3_bytes")] += _size(params.get("Body", b""))
        if service == "events" and model.name == "PutEvents":  # billed per event (per 64 KB of it), not per request
            self.units[(function, "events")] += sum(max(1, -(-_size(json.dumps(e)) // 65536)) for e in params.get("Entries", []))

    # A handler's own time is the CPU time of its thread, less what the emulator spent in the calls
    # it made on that thread: CPU time, because the emulator runs other work on threads beside it
    # (executions, asynchronous invocations) and a wall clock would count the handler's waits for
    # them. Calls the handler makes on threads of its own (ingest's parallel writes) are left out
    # of both, with the little of its own code those threads run.
    # A DynamoDB write's units are sized from the items it touched, looked at before and after it
    # (inside the call's timing: the emulator's time, not the handler's).
    def _before_call(self, model=None, params=None, **_):
        self._started.at = time.thread_time()
        self._started.write = self._write_began(model, params)

    def _after_call(self, **_):
        function, started = self._function(), getattr(self._started, "at", None)
        write, self._started.write = getattr(self._started, "write", None), None
        if function is not None and write is not None:
            operation, touched, before = write
            after = [self.sizes.entry(table, key) for table, key in touched]
            self.units[(function, "wru")] += self.sizes.write_units(operation, before, after)
        if function is not None and started is not None and getattr(self._started, "handler", None) == function:
            self.in_calls_s[function] += time.thread_time() - started

    def _write_began(self, model, params):
        if model is None or model.service_model.service_name != "dynamodb" or model.name not in WRITES:
            return None
        if self._function() is None:
            return None
        touched = self.sizes.touched(model.name, json.loads(params["body"]))
        return model.name, touched, [self.sizes.entry(table, key) for table, key in touched]

    def _timed(self, function: str, handler):
        def lambda_handler(event, context):
            outer, self._started.handler = getattr(self._started, "handler", None), function
            started = time.thread_time()
            try:
                return handler(event, context)
            finally:
                self.handler_s[function] += time.thread_time() - started
                self.invocations[function] += 1
                self._started.handler = outer

        return lambda_handler

    @contextmanager
    def installed(self):
        import boto3
        from botocore import handlers

        from coexist import wiring

        entries = [("before-parameter-build", self._on_params), ("before-call", self._before_call), ("after-call", self._after_call)]
        handlers.BUILTIN_HANDLERS.extend(entries)
        if boto3.DEFAULT_SESSION is not None:
            for event, handler in entries:
                boto3.DEFAULT_SESSION._session.register(event, handler)
        restore = self._time_handlers()
        stdout, sys.stdout = sys.stdout, _StdoutBytes(self, sys.stdout)
        wiring.reset()
        try:
            yield self
        finally:
            sys.stdout = stdout
            restore()
            for entry in entries:
                handlers.BUILTIN_HANDLERS.remove(entry)
            if boto3.DEFAULT_SESSION is not None:
                for event, handler in entries:
                    boto3.DEFAULT_SESSION._session.unregister(event, handler)
            wiring.reset()

    def _time_handlers(self):
        """Time every function's handler and count its log lines; returns what undoes it."""
        import importlib

        from local import workflows

        undo = []
        for name in self.FUNCTIONS:
            module = importlib.import_module(f"functions.{name}.handler")
            original = module.lambda_handler
            module.lambda_handler = self._timed(name, original)
            undo.append(lambda m=module, o=original: setattr(m, "lambda_handler", o))
            powertools = getattr(module, "logger", None)
            if powertools is not None:
                # Counted at the deployed level (INFO, stacks/constructs/service_function.py), not printed.
                target = logging.getLogger(powertools.name)
                counting = _LogBytes(self, name, target.handlers[0].formatter if target.handlers else None)
                levels = [(target, target.level)] + [(h, h.level) for h in target.handlers]
                for handler in target.handlers:
                    handler.setLevel(logging.CRITICAL + 1)
                target.setLevel(logging.INFO)
                target.addHandler(counting)
                undo.append(lambda t=target, h=counting, old=levels: (t.removeHandler(h), [o.setLevel(level) for o, level in old]))
        # The workflow's (and BotLoop's) invocations, registered under the emulated function's
        # name, `<prefix>-conversation`, before this counter was installed.
        registered = dict(workflows._handlers)
        for name, handler in registered.items():
            function = name.rsplit("-", 1)[-1]
            if function in self.FUNCTIONS and handler is not None:
                workflows._handlers[name] = self._timed(function, handler)
        undo.append(lambda: workflows._handlers.update({k: v for k, v in registered.items() if k in workflows._handlers}))
        return lambda: [step() for step in reversed(undo)]

    @contextmanager
    def effect(self, per: int = 1):
        """What the block cost."""
        fields = ("calls", "units", "invocations", "handler_s", "in_calls_s", "log_bytes")
        before = {name: Counter(getattr(self, name)) for name in fields}
        requests = Requests(per=per)
        yield requests
        for name in fields:
            after = Counter(getattr(self, name))
            after.subtract(before[name])
            setattr(requests, name, Counter({k: v for k, v in after.items() if v > 0}))


# --- the effects ---------------------------------------------------------------------------------

def measure_inbox_and_sending(account) -> dict[str, Requests]:
    """Inbound message, status, history import and an agent's send, in an emulated account without
    the conversation workflow (`tests.conftest.emulated_account`)."""
    from coexist import wiring
    from tests.integration.helpers import archive_queued, chat_of, deliver
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
        # In a second of its own, as a send some time after the chat's last message is: its recency
        # moves the chat in the inbox index (two index writes), which a send in the warm-up's second
        # would not.
        time.sleep(1.01 - time.time() % 1)
        with counter.effect() as found["send"]:
            code, sent = post({"type": "text", "text": "See you Thursday."}, key="measured", chat=chat)
            assert code == 202
            run_sender(account)
        assert len(cloud.sent) == 2, cloud.sent

        with counter.effect(per=STATUSES_PER_SEND) as found["status"]:
            # A sent message's three statuses, each a webhook; Meta echoes the send's callback data
            # (our message id) in every one and prices the message on one of them (`sent`).
            for state, extra in (("sent", {"pricing": PMP_SERVICE}), ("delivered", {}), ("read", {})):
                deliver(account, status("wamid.fake-2", state, now, biz_opaque_callback_data=sent["id"], **extra))

        with counter.effect(per=HISTORY_MESSAGES) as found["history"]:
            deliver(account, history_payload(HISTORY_MESSAGES, "counted"))

        # The raw archive: one batch as its event source mapping's window gathers it at the modelled
        # rate, of bodies like the inbound message's; priced per body (benchmarks/cost.py).
        archive_queued(account)  # what the webhooks above queued
        body = json.dumps(text_message("wamid.archived", now))
        for start in range(0, RAW_ARCHIVE_BATCH, 10):
            account.sqs.send_message_batch(QueueUrl=account.env["RAW_ARCHIVE_QUEUE_URL"], Entries=[
                {"Id": str(i), "MessageBody": body} for i in range(min(10, RAW_ARCHIVE_BATCH - start))])
        with counter.effect(per=RAW_ARCHIVE_BATCH) as found["archive"]:
            [result] = archive_queued(account)
        assert result["archived"] == RAW_ARCHIVE_BATCH, result
    return found


# --- targets and today's ceilings ----------------------------------------------------------------

def dynamodb_writes(requests: Requests) -> float:
    return requests.total("dynamodb", WRITES)


def write_units(requests: Requests) -> float:
    """DynamoDB write request units, as sized by `benchmarks/dynamodb_units.py` (indexes included)."""
    return sum(n for (_, kind), n in requests.units.items() if kind == "wru") / requests.per


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
    "status": "status webhook (webhook + ingest; per status of a sent message's three)",
    "history": "history message (bulk import, per message)",
    "send": "outbound send (API → queue → sender, besides Meta's call)",
    "bot_turn": "bot turn (conversation function, besides the bot's call)",
    "archive": "raw archive (per body, in a batch of 115)",
}

CHECKS = {
    "inbound": [
        # the message, the chat's window and recency in one update, the number's throughput bucket
        # (Meta counts incoming messages with the sends); the profile only when it changed
        Check("DynamoDB writes", dynamodb_writes, 3, 3),
        # the message and its `by_chat` entry, the chat and the two writes that move it in `by_recent`,
        # the bucket (benchmarks/dynamodb_units.py sizes them)
        Check("DynamoDB write units", write_units, None, 6),
        # to ingest, and to the raw archive's queue: 0.40 per million where the body's own S3 object was 5.00
        Check("SQS sends", sqs_sends, 1, 2),
        # + the CRM event (events:PutEvents); the campaign reply lookup only for a chat a campaign wrote to
        Check("all requests", all_requests, None, 8),
    ],
    # Per status, of a sent message's three: each its one conditional update, and the one Meta
    # prices (`sent`) the cost ledger's entry too (its PutItem: the message comes back from the
    # update, so pricing it reads nothing). The other two leave the ledger alone.
    "status": [
        Check("DynamoDB writes", dynamodb_writes, 1, 4 / 3),
        Check("DynamoDB write units", write_units, None, 8 / 3),
        Check("all requests", all_requests, None, 19 / 3),
    ],
    "history": [
        Check("BatchWriteItem", batch_writes, 1 / 25, 0.04),
        Check("DynamoDB write units", write_units, None, 2.15),
        Check("all requests", all_requests, None, 0.175),
    ],
    "send": [
        Check("all requests", all_requests, 4, 10),  # + the audit trail's entry (PutItem)
        # each update of the message rewrites its `by_chat` entry; the chat's recency moves it in `by_recent`
        Check("DynamoDB write units", write_units, None, 17),
    ],
    # the turn's start (which returns the waiting messages), one transaction per reply (the message
    # and the chat's write under the bot's hold; the last reply's ends the turn), the SQS send;
    # benchmarks/workflow.py measures it
    "bot_turn": [Check("all requests", all_requests, 3, 3)],
    # one object per batch; the queue's receive and delete are the event source mapping's
    "archive": [Check("S3 PUTs", lambda r: r.total("s3", {"PutObject"}), None, 1 / RAW_ARCHIVE_BATCH)],
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
