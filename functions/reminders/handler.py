"""Reminders: a one-time schedule fired (EventBridge Scheduler, `{"reminder_id": …}`); send it."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.domain.reminder import is_reminder_id
from coexist.resources import METRICS_NAMESPACE

logger = Logger(service="coexist-reminders")
tracer = Tracer(service="coexist-reminders")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-reminders")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    reminder_id = event.get("reminder_id") if isinstance(event, dict) else None
    if not isinstance(reminder_id, str) or not is_reminder_id(reminder_id):
        # Nothing a retry could fix: said, counted, and the invocation ends (Scheduler does not retry it).
        metrics.add_metric(name="ReminderEventInvalid", unit=MetricUnit.Count, value=1)
        logger.error("reminder event without a reminder id")
        return {"outcome": "invalid"}
    outcome = wiring.reminders().fire(reminder_id)
    metrics.add_metric(name="ReminderSent" if outcome == "sent" else "ReminderNotSent", unit=MetricUnit.Count, value=1)
    logger.info("reminder fired", extra={"reminder_id": reminder_id, "outcome": outcome})
    return {"outcome": outcome}
