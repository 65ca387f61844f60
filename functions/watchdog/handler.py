"""App-inactivity watch: daily, every coexistence number whose Business App has been quiet for 10, 12
or 13 days is reported to the operations topic (Meta disconnects it after about 14)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-watchdog")


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    warnings = wiring.app_watchdog().run()
    metrics.add_metric(name="AppInactivityWarnings", unit=MetricUnit.Count, value=len(warnings))
    logger.info("app inactivity checked", extra={"warnings": [{"phone_number_id": w.phone_number_id, "days": w.days}
                                                              for w in warnings]})
    return {"warnings": len(warnings)}
