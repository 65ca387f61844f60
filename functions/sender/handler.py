"""Sender: outbound FIFO batches to Meta, paced, with partial batch failures.

Records are grouped by message group (number#recipient): groups are sent in parallel, a group's
messages strictly in order. What happens to each record is decided by `coexist.outbound.batch`;
this handler only adapts SQS records to those decisions: it holds a group back (visibility), moves
a record to the DLQ, and reports the records that must come back.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.metrics import MetricUnit

from coexist import aws, wiring
from coexist.domain.send_errors import retries_exhausted
from coexist.observability import lambda_entry, powertools
from coexist.outbound import batch
from coexist.outbound.sender import Delivery
from coexist.settings import settings

logger, tracer, metrics = powertools("coexist-sender")
# Deployed, the access token comes from Secrets Manager: without its ARN the function does not start.
settings().require_secret_arns("access_token")
_pool = ThreadPoolExecutor(max_workers=10, thread_name_prefix="sender-group")


def _groups(records: list[dict]) -> list[list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record.get("attributes", {}).get("MessageGroupId", record["messageId"]), []).append(record)
    return list(groups.values())


def _receive_count(record: dict) -> int:
    return int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))


def _message_id(record: dict) -> str | None:
    try:
        return json.loads(record["body"])["message_id"]
    except (ValueError, KeyError, TypeError):
        return None


def _hold(records: list[dict], hold: batch.HoldGroup) -> list[str]:
    """Bring these records back after the hold; returns their ids (the batch's failures)."""
    queue = settings().outbound_queue_url
    for record in records:
        if batch.fails_when_held(_receive_count(record)):
            message_id = _message_id(record)
            if message_id:
                wiring.inbox().messages.record_failure(message_id, retries_exhausted(hold.reason), None)
        aws.client("sqs").change_message_visibility(QueueUrl=queue, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=hold.visibility_s)
    return [record["messageId"] for record in records]


def _park(record: dict, reason: str) -> None:
    """Into the DLQ (FIFO: same group), so an operator sees it and can redrive it."""
    attributes = record.get("attributes", {})
    aws.client("sqs").send_message(
        QueueUrl=settings().outbound_dlq_url,
        MessageBody=record["body"],
        MessageGroupId=attributes.get("MessageGroupId", record["messageId"]),
        MessageDeduplicationId=record["messageId"],
        MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}},
    )


def _deliver(sender, message_id: str | None):
    if message_id is None:
        raise ValueError("outbound record without a message_id")
    return sender.deliver(Delivery(message_id))


def _send_group(records: list[dict], context) -> list[str]:
    """Returns the ids of the records that must come back."""
    sender = wiring.sender()
    for index, record in enumerate(records):
        out_of_time = batch.may_start(context.get_remaining_time_in_millis())
        if out_of_time:
            return _hold(records[index:], out_of_time)
        message_id = _message_id(record)
        outcome = batch.attempt(lambda: _deliver(sender, message_id))
        decision = batch.next_step(outcome)
        _tell(message_id, outcome, decision)
        if isinstance(decision, batch.HoldGroup):
            return _hold(records[index:], decision)
        if isinstance(decision, batch.MoveToDlq):
            try:
                _park(record, decision.reason)
            except Exception:  # the message is already failed, with its reason, on the chat
                logger.exception("parking in the DLQ failed", extra={"message_id": message_id})
    return []


def _tell(message_id: str | None, outcome: batch.Outcome, decision: batch.Decision) -> None:
    """The metric and log line of one record: ids and reasons only, never content."""
    if decision.metric:
        metrics.add_metric(name=decision.metric, unit=MetricUnit.Count, value=1)
    throttled = batch.throttle_metric(outcome)
    if throttled:
        metrics.add_metric(name=throttled, unit=MetricUnit.Count, value=1)
    if isinstance(outcome, batch.Parked):
        logger.warning("send parked", extra={"message_id": message_id, "reason": outcome.reason})
    elif isinstance(outcome, batch.Deferred):
        logger.info("send deferred", extra={"message_id": message_id, "reason": outcome.reason, "seconds": round(outcome.seconds, 2)})
    elif isinstance(outcome, batch.Crashed):
        logger.error("send crashed", extra={"message_id": message_id}, exc_info=outcome.error)
    elif outcome.outcome == "failed":
        logger.info("send failed", extra={"message_id": message_id, "reason": outcome.reason})


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    groups = _groups(event.get("Records", []))
    failed: list[str] = []
    for ids in _pool.map(lambda group: _send_group(group, context), groups):
        failed += ids
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
