"""The sweeper under moto: messages left `queued` (or `sending`) go back on the outbound queue, found
through the sparse `unsent` index (no scan), counted in a metric and a log line without content."""

from __future__ import annotations

import json
import time

import pytest

from coexist import resources, wiring
from functions.sweeper import handler as sweeper_function
from local.lambdas import LocalFunction
from local.runtime import sweeper_schedule
from tests.conftest import Context
from tests.integration.helpers import CountingTable
from tests.integration.test_outbound import FakeCloudApi, open_window, post, queued, run_sender
from tests.integration.test_ingest import CUSTOMER

LATER = resources.STUCK_AFTER_S + 60  # seconds after the send: past the threshold


@pytest.fixture
def cloud(aws):
    fake = FakeCloudApi()
    wiring.sender().transports["graph"] = fake
    return fake


@pytest.fixture
def at(monkeypatch):
    """Run the sweeper as if `seconds` had passed; returns the table it used."""

    def run(seconds: float):
        sweeper = wiring.sweeper()
        monkeypatch.setattr(sweeper, "clock", lambda: time.time() + seconds)
        counting = CountingTable(wiring.inbox().messages.table)
        monkeypatch.setattr(sweeper.messages, "table", counting)
        return sweeper_function.lambda_handler({"detail-type": "Scheduled Event"}, Context()), counting

    return run


def item_of(aws, message_id: str) -> dict:
    return aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": message_id})["Item"]


def stored_but_not_queued(aws, monkeypatch, key: str = "k1") -> str:
    """A send the API stored and then failed to enqueue (503), never retried."""
    queue = wiring.outbox().queue
    real = queue.enqueue
    monkeypatch.setattr(queue, "enqueue", lambda *a: (_ for _ in ()).throw(RuntimeError("SQS unavailable")))
    code, body = post({"type": "text", "text": "Your appointment is confirmed."}, key=key)
    assert code == 503
    monkeypatch.setattr(queue, "enqueue", real)
    [item] = [i for i in aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).scan()["Items"] if i.get("idempotency_key") == key]
    return item["id"]


def test_a_message_left_queued_is_requeued_and_sent_once_with_counts_only_in_the_log(aws, cloud, monkeypatch, at, capsys, caplog):
    open_window(aws)
    message_id = stored_but_not_queued(aws, monkeypatch)
    assert queued(aws) == []

    report, table = at(LATER)

    assert report == {"found": 1, "requeued": 1, "waiting_for_slot": 0, "sending": 0}
    [record] = queued(aws)
    assert json.loads(record["Body"]) == {"message_id": message_id}
    assert "scan" not in table.calls and "query" in table.calls  # the sparse index, never a scan
    output = capsys.readouterr().out
    metric = next(json.loads(line) for line in output.splitlines() if '"SweeperRequeued"' in line)
    assert metric["SweeperRequeued"] == [1.0] and metric["service"] == "coexist-sweeper"
    [log] = [r for r in caplog.records if r.getMessage() == "sweep finished"]
    assert (log.found, log.requeued, log.waiting_for_slot, log.sending) == (1, 1, 0, 0)
    logged = output + "".join(json.dumps(vars(r), default=str) for r in caplog.records if r.name == "coexist-sweeper")
    assert CUSTOMER not in logged and "appointment" not in logged  # no phone number, no content

    run_sender(aws)
    assert len(cloud.sent) == 1 and item_of(aws, message_id)["status"] == "accepted"
    assert at(2 * LATER)[0]["found"] == 0  # sent: out of the index


def test_a_recent_message_is_left_alone_and_one_looked_at_is_not_requeued_again_before_the_threshold(aws, cloud, monkeypatch, at):
    open_window(aws)
    stored_but_not_queued(aws, monkeypatch)

    assert at(60)[0]["found"] == 0  # not stuck yet: the API may just have stored it
    assert at(LATER)[0]["requeued"] == 1
    assert at(LATER + 60)[0]["found"] == 0
    assert at(2 * LATER + 60)[0]["requeued"] == 1  # still not sent a threshold later: once more


def test_a_message_holding_a_future_slot_waits_for_it(aws, cloud, monkeypatch, at):
    open_window(aws)
    message_id = stored_but_not_queued(aws, monkeypatch)
    slot_ms = int((time.time() + 2 * LATER) * 1000)
    wiring.inbox().messages.hold_send_slot(message_id, slot_ms / 1000)

    report, _ = at(LATER)

    assert report == {"found": 1, "requeued": 0, "waiting_for_slot": 1, "sending": 0}
    assert queued(aws) == []
    assert int(item_of(aws, message_id)["unsent_since_ms"]) == slot_ms  # looked at again once it is due


def test_a_message_an_interrupted_attempt_left_sending_is_requeued_and_then_failed_as_outcome_unknown(aws, cloud, monkeypatch, at):
    open_window(aws)
    message_id = stored_but_not_queued(aws, monkeypatch)
    assert wiring.inbox().messages.mark_sending(message_id, "attempt-1")

    report, _ = at(LATER)
    assert (report["requeued"], report["sending"]) == (1, 1)
    run_sender(aws)
    item = item_of(aws, message_id)
    assert cloud.sent == [] and (item["status"], item["failure_reason"]) == ("failed", "outcome_unknown")
    assert not {"unsent_shard", "unsent_since_ms"} & set(item)


def test_failed_and_customer_messages_are_not_in_the_index(aws, cloud, monkeypatch, at):
    from coexist.outbound.graph import SendResult

    open_window(aws)  # a customer message: never in the index
    cloud.script = [SendResult(http_status=400, error_code=131047, error_title="Re-engagement message")]
    post({"type": "text", "text": "x"})
    run_sender(aws)
    assert at(LATER)[0]["found"] == 0


def test_one_run_looks_at_no_more_than_its_limit_and_the_next_run_carries_on(aws, cloud, monkeypatch, at):
    open_window(aws)
    for i in range(3):
        stored_but_not_queued(aws, monkeypatch, key=f"k{i}")
    monkeypatch.setattr(wiring.sweeper(), "limit", 2)
    assert at(LATER)[0]["requeued"] == 2
    assert at(LATER + 1)[0]["requeued"] == 1
    run_sender(aws)
    assert len(cloud.sent) == 3


def test_local_mode_runs_the_sweeper_on_its_own_schedule(aws, cloud, monkeypatch):
    open_window(aws)
    message_id = stored_but_not_queued(aws, monkeypatch)
    monkeypatch.setattr(wiring.sweeper(), "stuck_after_s", 0)
    function = LocalFunction("coexist-sweeper", "functions.sweeper.handler", resources.SWEEPER_TIMEOUT_S)
    assert function.load()

    schedule = sweeper_schedule(function, environ={})
    assert (schedule.every_s, schedule.rule_name) == (resources.SWEEP_EVERY_S, "coexist-sweeper")
    assert sweeper_schedule(function, environ={"COEXIST_SWEEP_S": "0"}) is None  # turned off
    fast = sweeper_schedule(function, environ={"COEXIST_SWEEP_S": "0.2"})
    fast.start()
    try:
        deadline = time.monotonic() + 10
        while not queued(aws) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        fast.stop()
    [record] = queued(aws)
    assert json.loads(record["Body"]) == {"message_id": message_id}
