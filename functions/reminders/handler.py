"""Reminders: a one-time schedule fired (EventBridge Scheduler, `{"reminder_id": …}`); send it."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.domain.reminder import is_reminder_id
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-reminders")


@lambda_entry(logger, tracer, metrics)
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
