"""Sender: outbound FIFO batches to Meta, paced, with partial batch failures.

Records are grouped by message group (number#recipient): groups are sent in parallel, a group's
messages strictly in order. When one must wait or retry, the rest of its group waits with it (its
visibility is set to the same delay), so no customer's messages overtake each other. A message
whose attempts ran out is failed and moved to the DLQ by the sender itself, and its group goes on.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import aws, wiring
from coexist.domain.send_errors import retries_exhausted
from coexist.outbound.sender import CircuitOpened, Defer, Delivery, Park, Retry
from coexist.resources import METRICS_NAMESPACE, OUTBOUND_MAX_RECEIVES
from coexist.settings import settings

logger = Logger(service="coexist-sender")
tracer = Tracer(service="coexist-sender")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-sender")

SAFETY_MARGIN_MS = 2_500  # stop starting sends this close to the function timeout
MAX_VISIBILITY_S = 12 * 3600  # the SQS maximum
_pool = ThreadPoolExecutor(max_workers=10, thread_name_prefix="sender-group")


def _groups(records: list[dict]) -> list[list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record.get("attributes", {}).get("MessageGroupId", record["messageId"]), []).append(record)
    return list(groups.values())


def _receive_count(record: dict) -> int:
    return int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))


def _hold(records: list[dict], seconds: float, reason: str) -> list[str]:
    """Bring these records back after `seconds`; returns their ids (the batch's failures).

    A record at its last receive goes to the DLQ after this one, whatever held it (its own wait or
    the message ahead of it in its group): its message is failed first, so it says why."""
    visibility = min(MAX_VISIBILITY_S, max(1, math.ceil(seconds)))
    queue = settings().outbound_queue_url
    for record in records:
        if _receive_count(record) >= OUTBOUND_MAX_RECEIVES:
            message_id = _message_id(record)
            if message_id:
                wiring.inbox().messages.record_failure(message_id, retries_exhausted(reason), None)
        aws.client("sqs").change_message_visibility(QueueUrl=queue, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=visibility)
    return [record["messageId"] for record in records]


def _message_id(record: dict) -> str | None:
    try:
        return json.loads(record["body"])["message_id"]
    except (ValueError, KeyError, TypeError):
        return None


def _park(record: dict, reason: str) -> None:
    """Into the DLQ (FIFO: same group), so an operator sees it and can redrive it."""
    attributes = record.get("attributes", {})
    aws.client("sqs").send_message(
        QueueUrl=settings().outbound_dlq_url,
        MessageBody=record["body"],
        MessageGroupId=attributes.get("MessageGroupId", record["messageId"]),
        MessageDeduplicationId=record["messageId"],
        MessageAttributes={"reason": {"DataType": "String", "StringValue": retries_exhausted(reason)}},
    )


def _send_group(records: list[dict], context) -> list[str]:
    """Returns the ids of the records that must come back."""
    sender = wiring.sender()
    for index, record in enumerate(records):
        rest = records[index:]
        if context.get_remaining_time_in_millis() < SAFETY_MARGIN_MS:
            return _hold(rest, 1, "function time ran out")
        message_id = _message_id(record)
        try:
            if message_id is None:
                raise ValueError("outbound record without a message_id")
            report = sender.deliver(Delivery(message_id))
        except Park as parked:
            metrics.add_metric(name="SenderParked", unit=MetricUnit.Count, value=1)
            logger.warning("send parked", extra={"message_id": message_id, "reason": parked.reason})
            try:
                _park(record, parked.reason)
            except Exception:  # the message is already failed, with its reason, on the chat
                logger.exception("parking in the DLQ failed", extra={"message_id": message_id})
            continue
        except Defer as deferral:
            _count(deferral)
            logger.info("send deferred", extra={"message_id": message_id, "reason": deferral.reason, "seconds": round(deferral.seconds, 2)})
            return _hold(rest, deferral.seconds, deferral.reason)
        except Exception:
            logger.exception("send crashed", extra={"message_id": message_id})
            metrics.add_metric(name="SenderCrashed", unit=MetricUnit.Count, value=1)
            return _hold(rest, 5, "sender error")
        metrics.add_metric(name=f"Sender{report.outcome.title()}", unit=MetricUnit.Count, value=1)
        if report.outcome == "failed":
            logger.info("send failed", extra={"message_id": message_id, "reason": report.reason})
    return []


def _count(deferral: Defer) -> None:
    if isinstance(deferral, CircuitOpened):
        metrics.add_metric(name="SenderCircuitOpened", unit=MetricUnit.Count, value=1)
    elif isinstance(deferral, Retry):
        metrics.add_metric(name="SenderRetried", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="SenderDeferred", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    groups = _groups(event.get("Records", []))
    failed: list[str] = []
    for ids in _pool.map(lambda group: _send_group(group, context), groups):
        failed += ids
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
