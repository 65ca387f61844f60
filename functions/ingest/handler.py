"""Ingest: inbound-queue batches to the inbox tables, reporting partial batch failures."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from coexist import wiring
from coexist.observability import lambda_entry, powertools
from coexist.costs import cost_metric
from coexist.ingest import Quarantined, envelope_from_record, ingest
from coexist.settings import settings

logger, tracer, metrics = powertools("coexist-ingest")
# Report every failed record, even when all fail, rather than raising: SQS then retries exactly
# those records and counts their receives towards the DLQ the same way in both cases.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@tracer.capture_method(capture_response=False)
def handle_record(record: SQSRecord) -> None:
    inbox = wiring.inbox()
    attributes = {name: value.string_value for name, value in record.message_attributes.items()}
    try:
        signals = wiring.signals() if settings().conversation_state_machine_arn else None
        summary = ingest(envelope_from_record(record.body, attributes, inbox.archive), inbox, signals, wiring.events(), wiring.reminders())
    except Quarantined as quarantined:
        # Kept in the archive's quarantine; retrying could never succeed, so the record is done.
        metrics.add_metric(name="IngestQuarantined", unit=MetricUnit.Count, value=1)
        logger.warning("record quarantined", extra={"message_id": record.message_id, "reason": str(quarantined)})
        return
    except Exception as error:
        # SQS redelivers the record, then parks it in the DLQ. The error's type and the record's id
        # say what and which; the error's text and the body may quote the message, so neither is logged.
        metrics.add_metric(name="IngestRecordFailed", unit=MetricUnit.Count, value=1)
        logger.error("record failed, to be retried", extra={"message_id": record.message_id, "error_type": type(error).__name__})
        raise
    metrics.add_metric(name="IngestMessages", unit=MetricUnit.Count, value=summary.messages)
    metrics.add_metric(name="IngestDuplicates", unit=MetricUnit.Count, value=summary.duplicates)
    metrics.add_metric(name="IngestStatuses", unit=MetricUnit.Count, value=summary.statuses)
    metrics.add_metric(name="IngestHistoryMessages", unit=MetricUnit.Count, value=summary.history_messages)
    if summary.unhandled:
        metrics.add_metric(name="IngestUnhandledChanges", unit=MetricUnit.Count, value=summary.unhandled)
    if summary.disconnections:
        # Meta took a number out of Coexistence (e.g. PRIMARY_INACTIVITY): an alarm pages on it.
        metrics.add_metric(name="NumberDisconnected", unit=MetricUnit.Count, value=summary.disconnections)
    for category, amount in summary.cost_by_category.items():
        # What Meta charges for the messages this record delivered, in the rate card's currency.
        metrics.add_metric(name=cost_metric(category), unit=MetricUnit.NoUnit, value=float(amount))
    if summary.unknown_message_types:
        metrics.add_metric(name="IngestUnknownMessageTypes", unit=MetricUnit.Count, value=len(summary.unknown_message_types))
    logger.info(
        "record ingested",
        extra={
            "message_id": record.message_id,
            "messages": summary.messages,
            "duplicates": summary.duplicates,
            "statuses": summary.statuses,
            "history_messages": summary.history_messages,
            "unhandled": summary.unhandled,
            "unknown_types": sorted(set(summary.unknown_message_types)),
        },
    )


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
