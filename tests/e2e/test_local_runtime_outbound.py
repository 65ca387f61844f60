"""Local mode's outbound machinery with stubs: the outbound FIFO poller leaves the sender's own
deferrals alone, functions run in parallel but each one at a time, the templates schedule sends
EventBridge's event, and the Meta sandbox starts only when no real Graph API is configured."""

from __future__ import annotations

import json
import threading
import types

import pytest
from aws_lambda_powertools import Metrics
from coexist import resources

from local import graph_api
from local import poller as poller_module
from local.lambdas import LocalFunction, _isolate_metrics
from local.poller import QueuePoller
from local.schedule import Schedule, scheduled_event


def outbound_poller(aws, handler, handler_sets_visibility: bool = True) -> QueuePoller:
    function = LocalFunction.of("coexist-sender", handler, resources.SENDER_TIMEOUT_S)
    queue_url = aws.env[resources.OUTBOUND_QUEUE_ENV]
    arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return QueuePoller(aws.sqs, queue_url, arn, function, resources.SENDER_BATCH_SIZE, wait_time_s=0, handler_sets_visibility=handler_sets_visibility)


def enqueue(aws, group: str, *bodies: str) -> None:
    for body in bodies:
        aws.sqs.send_message(
            QueueUrl=aws.env[resources.OUTBOUND_QUEUE_ENV], MessageBody=body, MessageGroupId=group, MessageDeduplicationId=f"{group}-{body}"
        )


def visible(aws) -> list[str]:
    messages = aws.sqs.receive_message(QueueUrl=aws.env[resources.OUTBOUND_QUEUE_ENV], MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [m["Body"] for m in messages]


@pytest.fixture
def immediate_retries(monkeypatch):
    monkeypatch.setattr(poller_module, "retry_delay_s", lambda receive_count: 0)


def deferring_sender(aws, seconds: int):
    """Like the sender: defers every record itself, then reports it failed."""

    def handler(event, context):
        for record in event["Records"]:
            aws.sqs.change_message_visibility(
                QueueUrl=aws.env[resources.OUTBOUND_QUEUE_ENV], ReceiptHandle=record["receiptHandle"], VisibilityTimeout=seconds
            )
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}

    return handler


def test_a_record_the_sender_deferred_stays_deferred(aws, immediate_retries):
    enqueue(aws, "n#1", "a")

    assert outbound_poller(aws, deferring_sender(aws, 30)).poll_once() == 1
    assert visible(aws) == []  # the local backoff (0 s here) did not cut the sender's 30 s


def test_without_that_flag_the_local_backoff_would_cut_it(aws, immediate_retries):
    enqueue(aws, "n#1", "a")

    outbound_poller(aws, deferring_sender(aws, 30), handler_sets_visibility=False).poll_once()
    assert visible(aws) == ["a"]


def test_when_the_sender_raises_the_local_backoff_applies(aws, immediate_retries):
    enqueue(aws, "n#1", "a")

    def crash(event, context):
        raise RuntimeError("boom")

    outbound_poller(aws, crash).poll_once()
    assert visible(aws) == ["a"]


def test_the_sender_gets_each_customers_messages_in_order(aws):
    enqueue(aws, "n#1", "1a", "1b", "1c")
    enqueue(aws, "n#2", "2a")
    seen: list[tuple[str, str]] = []

    def record(event, context):
        seen.extend((r["attributes"]["MessageGroupId"], r["body"]) for r in event["Records"])
        return {"batchItemFailures": []}

    poller = outbound_poller(aws, record)
    while poller.poll_once():
        pass

    assert [body for group, body in seen if group == "n#1"] == ["1a", "1b", "1c"]
    assert ("n#2", "2a") in seen and visible(aws) == []


def test_functions_run_in_parallel_but_each_one_at_a_time():
    release, slow_started = threading.Event(), threading.Event()
    running = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(event, context):
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        slow_started.set()
        release.wait(5)
        with lock:
            running["now"] -= 1
        return "slow"

    sender = LocalFunction.of("coexist-sender", slow, 10)
    webhook = LocalFunction.of("coexist-webhook", lambda event, context: "fast", 29)
    threads = [threading.Thread(target=sender.invoke, args=({},)) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert slow_started.wait(5)

    assert webhook.invoke({}) == "fast"  # not stuck behind the sender's wait
    release.set()
    for thread in threads:
        thread.join(5)
    assert running["max"] == 1  # the sender itself never ran twice at once


def test_each_function_gets_its_own_powertools_metric_store(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Coexist")
    modules = []
    for service in ("coexist-a", "coexist-b"):
        module = types.ModuleType(service)
        module.metrics = Metrics(service=service)
        assert _isolate_metrics(module)
        modules.append(module)
    a, b = (m.metrics for m in modules)

    a.add_metric(name="Sent", unit="Count", value=1)
    b.add_metric(name="Ingested", unit="Count", value=1)
    assert set(a.provider.metric_set) == {"Sent"} and set(b.provider.metric_set) == {"Ingested"}
    b.flush_metrics()  # b's flush (end of its invocation) neither prints nor clears a's metrics
    assert set(a.provider.metric_set) == {"Sent"} and not b.provider.metric_set


def test_the_templates_schedule_sends_an_eventbridge_scheduled_event():
    events = []
    schedule = Schedule(LocalFunction.of("coexist-templates", lambda event, context: events.append(event), 60), 300, "coexist-templates-sync")

    assert schedule.invoke_once()
    (event,) = events
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    assert event["resources"][0].endswith(":rule/coexist-templates-sync")
    assert set(event) == set(scheduled_event("x"))

    def crash(event, context):
        raise RuntimeError("Meta unreachable")

    assert Schedule(LocalFunction.of("coexist-templates", crash, 60), 300, "r").invoke_once() is False  # logged, not raised


def test_the_sandbox_starts_only_without_a_real_graph_api():
    real = {"GRAPH_API_BASE_URL": "https://graph.facebook.com", "WHATSAPP_ACCESS_TOKEN": "real", "WHATSAPP_APP_SECRET": "s"}
    assert graph_api.start("http://127.0.0.1:9/webhook", environ=real) is None
    assert real["GRAPH_API_BASE_URL"] == "https://graph.facebook.com" and "COEXIST_WABA_IDS" not in real

    environ = {"WHATSAPP_APP_SECRET": "s"}
    sandbox = graph_api.start("http://127.0.0.1:9/webhook", environ=environ)
    try:
        assert environ["GRAPH_API_BASE_URL"] == sandbox.url
        assert (environ["GRAPH_API_VERSION"], environ["WHATSAPP_ACCESS_TOKEN"]) == ("v24.0", "local-access-token")
        assert environ["COEXIST_WABA_IDS"] == "102290129340398"
        assert json.loads(environ["COEXIST_NUMBERS"]) == {"106540352242922": {"throughput_mps": 20}, "106540352242923": {"throughput_mps": 80}}
    finally:
        sandbox.stop()
