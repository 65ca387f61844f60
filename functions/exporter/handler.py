"""Exporter: builds the export a `POST /api/chats/{chat_id}/exports` asked for (one JSON document of
everything held about the customer) and writes it to the private exports bucket. A failed export is
retried by the queue; on its last receive it is marked failed (and parked in the DLQ, which alarms).
Logs carry the export and chat ids only."""

from __future__ import annotations

import json

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools
from coexist.resources import EXPORTS_MAX_RECEIVES, EXPORTS_PREFIX

logger, tracer, metrics = powertools("coexist-exporter")


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    failures = []
    for record in event.get("Records") or []:
        try:
            export(json.loads(record["body"])["export_id"])
        except Exception as error:  # one export failing must not fail the others of the batch
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
            logger.warning("export failed", extra={"message_id": record.get("messageId"), "error": type(error).__name__,
                                                   "receives": receives})
            if receives >= EXPORTS_MAX_RECEIVES:
                _give_up(record, type(error).__name__)
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def export(export_id: str) -> None:
    from coexist.domain.audit import iso_ms
    from datetime import datetime, timezone

    rights = wiring.customer_rights()
    job = rights.store.export(export_id)
    if job is None or job["status"] == "done":
        return  # unknown, or a redelivery of one already written
    document = rights.export_document(job["chat_id"])
    key = f"{EXPORTS_PREFIX}{export_id}.json"
    wiring.export_files().put_object(
        Bucket=wiring.settings().exports_bucket, Key=key, Body=document, ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )
    rights.store.finish_export(export_id, key, iso_ms(datetime.now(timezone.utc)))
    metrics.add_metric(name="ExportsWritten", unit=MetricUnit.Count, value=1)
    logger.info("export written", extra={"export_id": export_id, "chat_id": job["chat_id"], "bytes": len(document)})


def _give_up(record: dict, reason: str) -> None:
    from coexist.domain.audit import iso_ms
    from datetime import datetime, timezone

    try:
        export_id = json.loads(record["body"])["export_id"]
        wiring.customer_rights().store.fail_export(export_id, reason, iso_ms(datetime.now(timezone.utc)))
    except Exception:  # the DLQ and its alarm still tell the operator
        logger.exception("export could not be marked failed")
