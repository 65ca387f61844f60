"""Fed by the keys-only DynamoDB streams of the chats and messages tables: one change event per
table and business number a batch touched, pushed to the connected consoles whose person may see
that number (coexist/live/fanout.py)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.resources import METRICS_NAMESPACE

logger = Logger(service="coexist-live-fanout")
tracer = Tracer(service="coexist-live-fanout")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-live-fanout")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    delivery = wiring.live_fanout().push(event.get("Records", []))
    totals = {"sent": delivery.sent, "gone": delivery.gone, "failed": delivery.failed}
    for outcome, count in totals.items():
        metrics.add_metric(name=f"LiveChanges{outcome.capitalize()}", unit=MetricUnit.Count, value=count)
    logger.info("live changes pushed", extra=totals)
    return totals
