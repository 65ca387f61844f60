"""The audit trail's immutable copy: each batch of the audit table's stream becomes one JSON-lines
object in the audit bucket (S3 Object Lock, compliance mode). A failed write fails the batch, which
the event source mapping retries (splitting it) and finally parks in its dead-letter queue."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.resources import METRICS_NAMESPACE

logger = Logger(service="coexist-audit-archive")
tracer = Tracer(service="coexist-audit-archive")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-audit-archive")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    records = event.get("Records") or []
    key = wiring.audit_archive().write(records)
    changed = sum(1 for r in records if r.get("eventName") != "INSERT" and not _expired(r))
    metrics.add_metric(name="AuditEntriesArchived", unit=MetricUnit.Count, value=len(records))
    if changed:
        # Entries are only ever inserted: a change or removal means someone went around the API.
        metrics.add_metric(name="AuditEntriesAltered", unit=MetricUnit.Count, value=changed)
        logger.warning("audit table changed other than by insertion", extra={"records": changed, "archive_key": key})
    logger.info("audit entries archived", extra={"records": len(records), "archive_key": key})
    return {"archived": len(records), "key": key, "altered": changed}


def _expired(record: dict) -> bool:
    """A removal by DynamoDB's TTL (the table's retention, docs/OPERATIONS.md): expected, not tampering."""
    identity = record.get("userIdentity") or {}
    return (record.get("eventName") == "REMOVE" and identity.get("type") == "Service"
            and identity.get("principalId") == "dynamodb.amazonaws.com")
