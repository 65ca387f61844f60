"""Fed by the keys-only DynamoDB streams of the chats and messages tables: one change event per
table and business number a batch touched, pushed to the connected consoles whose person may see
that number (coexist/live/fanout.py)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-live-fanout")


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    delivery = wiring.live_fanout().push(event.get("Records", []))
    totals = {"sent": delivery.sent, "gone": delivery.gone, "failed": delivery.failed}
    for outcome, count in totals.items():
        metrics.add_metric(name=f"LiveChanges{outcome.capitalize()}", unit=MetricUnit.Count, value=count)
    logger.info("live changes pushed", extra=totals)
    return totals
