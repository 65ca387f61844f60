"""Health data stays out of logs, metrics and traces.

Sentinel message bodies, contact names and phone numbers go through every path the real handlers
can be driven along here: customer messages, the bot's replies, escalation to an agent, the agent's
reply through the send API and the sender, statuses (delivered, failed), echoes (text, a valid edit,
an invalid edit, a revoke), history, address-book contacts, bad payloads (unsigned, not an envelope,
invalid items, not JSON) and bad API requests. Then every line the functions' Powertools loggers
wrote, every record any logger emitted, every EMF metric printed and every trace segment the
functions' tracers produced (their provider replaced by a recorder that keeps what X-Ray would be
sent, exceptions included) is searched for the sentinels.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import re
import threading
import time
import traceback

import pytest

from coexist import wiring
from functions.api import handler as api_function
from local.workflows import EXECUTE_STATE_MACHINES
from tests.conftest import API_TOKEN, APP_SECRET, Context, api_event, emulated_account, meta_payload
from tests.integration.helpers import chat_of, deliver, ingest_queued, messages_of, post_webhook
from tests.integration.test_conversation import FAST, wait_for
from tests.integration.test_ingest import NUMBER
from tests.integration.test_outbound import FakeCloudApi, run_sender

FUNCTIONS = ("webhook", "ingest", "api", "sender", "templates", "conversation", "connect_events")
PHONE = "15550009137"  # the customer
BOOK_PHONE = "15550009138"  # a contact in the phone's address book


def chat() -> str:
    """The customer's opaque chat id (never derived from the phone number)."""
    return chat_of(NUMBER, PHONE)
BODY = "SNTLBODY"  # in every message text: "SNTLBODY<n> my HIV test result"
NAMES = ("SNTLNAME", "Zoe Quill", "Quillfeather")
DIAGNOSIS = "HIV test result"


def body(n: int) -> str:
    return f"{BODY}{n} my {DIAGNOSIS}"


class TraceRecorder:
    """A tracing provider keeping, as JSON, what the X-Ray SDK would send: each subsegment with its
    annotations, metadata and (as the SDK records on an exception leaving the block) the exception's
    type, message and stack."""

    def __init__(self):
        self.segments: list[str] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def in_subsegment(self, name=None, **_kwargs):
        segment = {"name": name, "annotations": {}, "metadata": {}, "cause": None}
        recorder = self

        class Subsegment:
            def put_annotation(self, key, value):
                segment["annotations"][key] = value

            def put_metadata(self, key, value, namespace="default"):
                segment["metadata"].setdefault(namespace, {})[key] = value

            def add_exception(self, exception, stack, remote=False):
                segment["cause"] = {"type": type(exception).__name__, "message": str(exception),
                                    "stack": [str(frame) for frame in stack]}

        subsegment = Subsegment()
        try:
            yield subsegment
        except Exception as error:
            subsegment.add_exception(error, traceback.extract_tb(error.__traceback__))
            raise
        finally:
            with recorder._lock:
                recorder.segments.append(json.dumps(segment, default=str))

    def put_annotation(self, key, value):
        pass

    def put_metadata(self, key, value, namespace="default"):
        pass


class RecordCollector(logging.Handler):
    """Every record of every logger (the Lambda runtime sends them all to CloudWatch)."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        extras = {k: v for k, v in record.__dict__.items() if k not in logging.LogRecord("", 0, "", 0, "", None, None).__dict__}
        text = f"{record.name} {record.levelname} {record.getMessage()} {extras!r}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        self.lines.append(text)


@pytest.fixture
def captured(monkeypatch, capsys):
    """Collects (logs, traces); metrics are read from stdout, where Powertools prints EMF."""
    streams, recorder, collector = io.StringIO(), TraceRecorder(), RecordCollector()
    levels = {}
    for name in FUNCTIONS:
        module = importlib.import_module(f"functions.{name}.handler")
        handler = module.logger.registered_handler
        monkeypatch.setattr(handler, "stream", streams)  # what the function writes to CloudWatch
        levels[module.logger] = module.logger.log_level
        module.logger.setLevel(logging.DEBUG)  # stricter than deployed (INFO): debug lines too
        monkeypatch.setattr(module.tracer, "provider", recorder)
    root = logging.getLogger()
    root.addHandler(collector)
    previous = root.level
    root.setLevel(logging.INFO)  # as deployed (POWERTOOLS_LOG_LEVEL=INFO); libraries log wire data at DEBUG
    try:
        yield streams, recorder, collector
    finally:
        root.removeHandler(collector)
        root.setLevel(previous)
        for logger, level in levels.items():
            logger.setLevel(level)


@pytest.fixture
def account(monkeypatch):
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps(FAST))
    with emulated_account(monkeypatch, config=EXECUTE_STATE_MACHINES, workflow=True) as emulated:
        yield emulated


# --- payloads ------------------------------------------------------------------------------------

def customer_says(wamid: str, text: str, at: int) -> dict:
    payload = meta_payload("messages_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update({"wa_id": PHONE, "profile": {"name": f"{NAMES[0]} {NAMES[1]}"}})
    value["messages"][0].update({"id": wamid, "timestamp": str(at), "from": PHONE, "text": {"body": text}})
    return payload


def echoes(*items: dict) -> dict:
    payload = meta_payload("smb_message_echoes_text.json")
    template = payload["entry"][0]["changes"][0]["value"]["message_echoes"][0]
    payload["entry"][0]["changes"][0]["value"]["message_echoes"] = [dict(copy.deepcopy(template), to=PHONE, **item) for item in items]
    return payload


def history(at: int) -> dict:
    payload = meta_payload("history_approved_phase0_chunk1.json")
    block = payload["entry"][0]["changes"][0]["value"]["history"][0]
    block["threads"] = [{"id": PHONE, "messages": [
        {"from": PHONE, "id": "wamid.hist-1", "timestamp": str(at - 900), "type": "text", "text": {"body": body(20)}, "history_context": {"status": "READ"}},
        {"from": "15550783881", "id": "wamid.hist-2", "timestamp": str(at - 800), "type": "text", "text": {"body": body(21)}, "history_context": {"status": "DELIVERED"}},
    ]}]
    return payload


def address_book() -> dict:
    payload = meta_payload("smb_app_state_sync_add.json")
    payload["entry"][0]["changes"][0]["value"]["state_sync"][0]["contact"] = {
        "full_name": f"{NAMES[0]} {NAMES[2]}", "first_name": NAMES[2], "phone_number": f"+1 555-000-{BOOK_PHONE[-4:]}"}
    return payload


def statuses(wamid: str, at: int) -> list[dict]:
    out = []
    for state, extra in (("delivered", {}), ("read", {}), ("failed", {"errors": [{"code": 131026, "title": "Message undeliverable", "message": "Message undeliverable", "error_data": {"details": "Message Undeliverable."}}]})):
        payload = meta_payload("status_v24_no_conversation_no_pricing.json")
        payload["entry"][0]["changes"][0]["value"]["statuses"][0].update({"id": wamid, "status": state, "timestamp": str(at), "recipient_id": PHONE, **extra})
        out.append(payload)
    return out


def agent(method: str, path: str, agent_id: str | None = "ana", body_: object = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    if agent_id:
        headers["X-Agent-Id"] = agent_id
    raw = body_ if isinstance(body_, bytes) else json.dumps(body_ if body_ is not None else {}).encode()
    response = api_function.lambda_handler(api_event(method, path, raw, headers), Context())
    return response["statusCode"], json.loads(response["body"])


# --- the scenario --------------------------------------------------------------------------------

def drive_every_path(account) -> None:
    from coexist.meta.signature import sign

    cloud = FakeCloudApi()
    wiring.sender().transports["graph"] = cloud
    now = int(time.time())
    assert agent("POST", "/api/agents", body_={"agent_id": "ana", "name": "Ana", "skills": ["general"], "capacity": 2})[0] == 201
    assert agent("PUT", "/api/agents/ana/status", body_={"status": "available"})[0] == 200

    # History and the address book first, as a newly connected number receives them.
    deliver(account, history(now), address_book())
    # The customer writes, the bot answers, then the customer asks for a person: escalation.
    deliver(account, customer_says("wamid.c1", "What are your opening hours?", now))
    wait_for(lambda: wiring.inbox_reader().chat(chat())["waiting_for"] == "customer", what="the bot to answer")
    deliver(account, customer_says("wamid.c2", f"I want to talk to a person {body(2)}", now + 1))
    wait_for(lambda: wiring.inbox_reader().chat(chat())["offered_to"] == "ana", what="the offer to ana")
    assert agent("POST", f"/api/chats/{chat()}/accept")[0] == 200
    code, sent = agent("POST", f"/api/chats/{chat()}/messages", body_={"type": "text", "text": body(3)})
    assert code == 202, sent
    run_sender(account)
    assert any(m["source"] == "bot" for m in messages_of(chat()))
    assert cloud.sent, "the sender called the (fake) Cloud API"
    wamid = next(m["wamid"] for m in messages_of(chat()) if m["id"] == sent["id"])
    deliver(account, *statuses(wamid, now + 5))

    # Someone answers from the phone: an echo, an edit of it, an edit Meta sent malformed, a revoke.
    deliver(account, echoes(
        {"id": "wamid.e1", "timestamp": str(now + 6), "type": "text", "text": {"body": body(4)}},
        {"id": "wamid.e2", "timestamp": str(now + 7), "type": "edit", "edit": {"original_message_id": "wamid.e1", "message": {"type": "text", "text": {"body": body(5)}}}},
        {"id": "wamid.e3", "timestamp": str(now + 8), "type": "edit", "edit": {"original_message_id": "wamid.e1", "message": {"type": "text", "text": body(6)}}},
        {"id": "wamid.e4", "timestamp": str(now + 9), "type": "revoke", "revoke": {"original_message_id": "wamid.e1"}},
    ))
    edited = next(m for m in messages_of(chat()) if m["id"] == "wamid.e1")
    assert edited["edited_at"] is not None  # the valid edit applied; the invalid one was kept aside

    # Bad requests to the API: a text over Meta's limit, a wrongly typed field, not JSON.
    assert agent("POST", f"/api/chats/{chat()}/messages", body_={"type": "text", "text": body(7) * 400})[0] == 422
    assert agent("POST", f"/api/chats/{chat()}/messages", body_={"type": "text", "text": [body(8)], "extra": body(9)})[0] == 422
    assert agent("POST", f"/api/chats/{chat()}/messages", body_=f"{body(10)} {PHONE}".encode())[0] == 400
    assert agent("POST", "/api/agents", body_={"agent_id": PHONE * 100, "name": body(11)})[0] == 400

    # Bad payloads at the webhook: unsigned, signed but not an envelope, invalid items, not JSON.
    from functions.webhook import handler as webhook_function
    from tests.conftest import api_event as gateway_event

    unsigned = json.dumps(customer_says("wamid.x1", body(12), now)).encode()
    assert webhook_function.lambda_handler(gateway_event("POST", "/webhook", unsigned, {"Content-Type": "application/json"}, resource="/webhook"), Context())["statusCode"] == 401
    assert post_webhook({"hello": body(13), "phone": PHONE, "name": NAMES[1]})["statusCode"] == 200
    broken = customer_says("wamid.x2", body(14), now + 10)
    del broken["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    broken["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = f"{body(15)}"
    assert post_webhook(broken)["statusCode"] == 200
    not_json = f"{{{body(16)} {PHONE}".encode()
    event = gateway_event("POST", "/webhook", not_json, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(not_json, APP_SECRET)}, resource="/webhook")
    assert webhook_function.lambda_handler(event, Context())["statusCode"] == 200
    results = ingest_queued(account)
    assert all(r == {"batchItemFailures": []} for r in results), results  # nothing goes round to the DLQ

    # The agent closes; the survey question goes out and the customer answers it.
    wait_for(lambda: wiring.inbox_reader().chat(chat())["waiting_for"] == "agent", what="the agent wait")
    assert agent("POST", f"/api/chats/{chat()}/close")[0] == 200
    wait_for(lambda: wiring.inbox_reader().chat(chat())["waiting_for"] == "survey", what="the survey")
    run_sender(account)
    deliver(account, customer_says("wamid.c3", body(17), now + 20))


def test_no_body_name_or_phone_number_reaches_logs_metrics_or_traces(account, captured, capsys):
    streams, recorder, collector = captured
    drive_every_path(account)
    time.sleep(0.5)  # the workflow's last steps log on moto's thread

    sinks = {
        "powertools log": streams.getvalue().splitlines(),
        "log record": collector.lines,
        "EMF metric / stdout": capsys.readouterr().out.splitlines(),
        "trace segment": recorder.segments,
        "workflow execution": workflow_executions(),
    }
    assert sinks["powertools log"] and sinks["trace segment"] and any('"_aws"' in line for line in sinks["EMF metric / stdout"])
    assert any("## lambda_handler" in s for s in recorder.segments)
    assert any(chat() in line for line in sinks["workflow execution"])  # the conversation ran, by its opaque id

    leaks = [(sink, line[:300]) for sink, lines in sinks.items() for line in lines
             if BODY in line or DIAGNOSIS in line or any(name in line for name in NAMES)]
    assert leaks == [], "message bodies or names reached logs, metrics or traces"

    # Chat ids are opaque, so no carrier is excluded: any appearance of the numbers fails, in a log
    # line, a metric, a trace segment or a workflow execution's name, input or output.
    phone_numbers = re.compile(rf"{PHONE}|{BOOK_PHONE}|555-000-")
    numbers_seen = [(sink, line[:300]) for sink, lines in sinks.items() for line in lines if phone_numbers.search(line)]
    assert numbers_seen == [], "phone numbers reached logs, metrics or traces"


def workflow_executions() -> list[str]:
    """What Step Functions keeps of each conversation and shows in its console: the execution's
    name, input and output, and every state's input and output in its history."""
    from coexist import aws

    sfn = aws.client("stepfunctions")
    arn = wiring.settings().conversation_state_machine_arn
    lines = []
    for execution in sfn.list_executions(stateMachineArn=arn)["executions"]:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        lines.append(json.dumps({k: described.get(k) for k in ("name", "input", "output")}))
        history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
        lines += [json.dumps(event, default=str) for event in history]
    return lines


def test_the_capture_sees_what_a_function_would_write(aws, captured, capsys):
    """The search above is not vacuous: a leak in any sink would be found."""
    from functions.ingest import handler as ingest_function

    streams, recorder, collector = captured
    ingest_function.logger.info("leak", extra={"text": body(98)})
    logging.getLogger("coexist.somewhere").warning("leak %s", PHONE)
    ingest_function.metrics.add_metadata(key="leak", value=NAMES[1])
    ingest_function.metrics.add_metric(name="Leak", unit="Count", value=1)
    ingest_function.metrics.flush_metrics()

    @ingest_function.tracer.capture_method
    def fails():
        raise ValueError(body(99))

    with pytest.raises(ValueError):
        fails()
    assert body(98) in streams.getvalue()
    assert any(PHONE in line for line in collector.lines)
    assert NAMES[1] in capsys.readouterr().out
    assert any(body(99) in segment for segment in recorder.segments)
