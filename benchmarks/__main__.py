"""`python -m benchmarks`: the inbound path's speed, measured against moto in-process.

Numbers are for this machine and an emulated AWS: they compare versions of Coexist with each
other; they are not AWS latencies. Run twice and compare; nothing here asserts a threshold.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "meta" / "meta_docs"
SECRET = "bench-secret"


def _payload(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def text_changes(count: int, start: int = 0) -> dict:
    """One webhook with `count` customer text messages (Meta batches up to 1000)."""
    payload = _payload("messages_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    template = value["messages"][0]
    value["messages"] = [
        dict(template, id=f"wamid.bench-{start + i}", timestamp=str(1_800_000_000 + start + i), **{"from": f"1650{(start + i) % 500:07d}"})
        for i in range(count)
    ]
    value["contacts"] = [{"profile": {"name": "Bench"}, "wa_id": m["from"]} for m in value["messages"]]
    return payload


def history_payload(messages: int, tag: str) -> dict:
    payload = _payload("history_approved_phase0_chunk1.json")
    block = payload["entry"][0]["changes"][0]["value"]["history"][0]
    template = block["threads"][0]["messages"][2]
    per_thread = 50
    block["threads"] = [
        {
            "id": f"1650{t:07d}",
            "messages": [
                dict(copy.deepcopy(template), id=f"wamid.{tag}-{t}-{i}", timestamp=str(1_700_000_000 + i))
                for i in range(per_thread)
            ],
        }
        for t in range(messages // per_thread)
    ]
    return payload


def main() -> int:
    os.environ.update({"WHATSAPP_APP_SECRET": SECRET, "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"})
    sys.path[:0] = [str(ROOT / "layers"), str(ROOT)]
    from local.emulator import create_resources, use_fake_aws_credentials

    use_fake_aws_credentials()
    import boto3
    from moto import mock_aws

    rows: list[tuple[str, str]] = []
    # The handlers print their metrics (CloudWatch EMF) to stdout; keep the table readable.
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        os.environ.update(create_resources(boto3.Session(region_name="us-east-1"), prefix="coexist-bench"))
        # First: it installs the AWS call recorder, which must see the handlers imported.
        from tests.conftest import Context, api_event, drain_inbound

        from coexist import wiring
        from coexist.meta.signature import sign
        from functions.ingest import handler as ingest_function
        from functions.webhook import handler as webhook_function

        wiring.reset()
        context = Context()

        def post(body: bytes) -> float:
            event = api_event("POST", "/webhook", body, {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)}, resource="/webhook")
            started = time.perf_counter()
            response = webhook_function.lambda_handler(event, context)
            elapsed = time.perf_counter() - started
            assert response["statusCode"] == 200, response
            return elapsed

        def ingest_all() -> float:
            started = time.perf_counter()
            for event in drain_inbound(_Namespace()):
                result = ingest_function.lambda_handler(event, context)
                assert result == {"batchItemFailures": []}, result
                for record in event["Records"]:
                    _sqs().delete_message(QueueUrl=os.environ["INBOUND_QUEUE_URL"], ReceiptHandle=record["receiptHandle"])
            return time.perf_counter() - started

        text_times = [post(json.dumps(text_changes(1, start=i)).encode()) for i in range(200)]
        rows.append(("webhook, 1 text message: p50 / p99", f"{_percentile(text_times, 50) * 1000:.1f} / {_percentile(text_times, 99) * 1000:.1f} ms"))
        ingest_all()

        big = json.dumps(history_payload(12_000, "big")).encode()
        big_times = []
        for i in range(10):
            body = big.replace(b"wamid.big-", f"wamid.big{i}-".encode())
            big_times.append(post(body))
        rows.append((f"webhook, {len(big) / 1e6:.1f} MB history payload: p50 / p99", f"{_percentile(big_times, 50) * 1000:.1f} / {_percentile(big_times, 99) * 1000:.1f} ms"))
        _purge()

        changes = 2_000
        for batch in range(changes // 100):
            post(json.dumps(text_changes(100, start=10_000 + batch * 100)).encode())
        calls = _count_aws_calls()
        seconds = ingest_all()
        rows.append(("ingest, customer messages (100 per webhook), one worker", f"{changes / seconds:,.0f} changes/s"))
        rows.append(("ingest, AWS calls per customer message (machine-independent)", f"{calls.total / changes:.2f}"))
        calls.stop()

        history_messages = 10_000
        post(json.dumps(history_payload(history_messages, "hist")).encode())
        seconds = ingest_all()
        rows.append(("ingest, history import (bulk), one worker", f"{history_messages / seconds:,.0f} messages/s"))

    from benchmarks import latency

    rows += latency.rows()
    from benchmarks import aws_requests

    with contextlib.redirect_stdout(io.StringIO()):
        rows += aws_requests.rows(aws_requests.measure())
    from benchmarks import workflow

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rows += workflow.rows(workflow.measure())
    if "--inbound-only" not in sys.argv:
        from benchmarks.outbound import measure

        rows += measure()
    from benchmarks import pacing

    rows += [(f"pacing simulation: {name}", result) for name, result in pacing.run()]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measurement'.ljust(width)} | result")
    print(f"{'-' * width}-|-{'-' * 24}")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")
    print("\nAWS emulated by moto in-process on this machine; compare runs with each other, not with AWS.")
    return 0


class _count_aws_calls:
    """Counts DynamoDB and S3 requests made by the handlers (every boto3 session in the process)."""

    def __init__(self):
        from botocore import handlers

        self.total = 0
        self._handlers = handlers
        handlers.BUILTIN_HANDLERS.append(("before-call.dynamodb", self._count))
        handlers.BUILTIN_HANDLERS.append(("before-call.s3", self._count))
        from coexist import wiring

        wiring.reset()  # new sessions pick up the counting handlers

    def _count(self, **_):
        self.total += 1

    def stop(self):
        self._handlers.BUILTIN_HANDLERS.remove(("before-call.dynamodb", self._count))
        self._handlers.BUILTIN_HANDLERS.remove(("before-call.s3", self._count))


def _sqs():
    from coexist import aws

    return aws.client("sqs")


class _Namespace:
    """What tests.conftest.drain_inbound needs: the queue and its ARN."""

    @property
    def sqs(self):
        return _sqs()

    @property
    def env(self):
        return os.environ

    @property
    def queue_arn(self):
        return "arn:aws:sqs:us-east-1:123456789012:coexist-bench-inbound"


def _purge() -> None:
    _sqs().purge_queue(QueueUrl=os.environ["INBOUND_QUEUE_URL"])


if __name__ == "__main__":
    raise SystemExit(main())
