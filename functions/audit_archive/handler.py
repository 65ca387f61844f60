"""The audit trail's immutable copy: each batch of the audit table's stream becomes one JSON-lines
object in the audit bucket (S3 Object Lock, compliance mode). A failed write fails the batch, which
the event source mapping retries (splitting it) and finally parks in its dead-letter queue."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-audit-archive")


@lambda_entry(logger, tracer, metrics)
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
