"""App-inactivity watch: daily, every coexistence number whose Business App has been quiet for 10, 12
or 13 days is reported to the operations topic (Meta disconnects it after about 14)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.resources import METRICS_NAMESPACE

logger = Logger(service="coexist-watchdog")
tracer = Tracer(service="coexist-watchdog")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-watchdog")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    warnings = wiring.app_watchdog().run()
    metrics.add_metric(name="AppInactivityWarnings", unit=MetricUnit.Count, value=len(warnings))
    logger.info("app inactivity checked", extra={"warnings": [{"phone_number_id": w.phone_number_id, "days": w.days}
                                                              for w in warnings]})
    return {"warnings": len(warnings)}
