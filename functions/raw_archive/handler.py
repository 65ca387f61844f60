"""The raw archive: each batch of the raw archive queue, the signed bodies the webhook took in,
becomes one JSON-lines object under raw/ in the archive bucket (S3 Object Lock). A failed write
fails the whole batch, which SQS delivers again and finally parks in the queue's dead-letter queue
(with an alarm); nothing is acknowledged before its object is written."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools
from coexist.store.archive import RawBody

logger, tracer, metrics = powertools("coexist-raw-archive")


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    records = event.get("Records") or []
    bodies = [RawBody(r["body"], int(r["attributes"]["SentTimestamp"]) / 1000) for r in records]
    key = wiring.raw_archive().keep_raw_batch(bodies)
    metrics.add_metric(name="RawBodiesArchived", unit=MetricUnit.Count, value=len(bodies))
    logger.info("raw bodies archived", extra={"bodies": len(bodies), "archive_key": key})  # counts and a key only
    return {"archived": len(bodies), "key": key}
