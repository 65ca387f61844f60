"""Sweeper: on a schedule, puts messages left `queued` (or `sending`) back on the outbound queue.

What it finds and why it is safe: coexist.outbound.sweeper. Its log line and metric carry counts only.
"""

from __future__ import annotations

from dataclasses import asdict

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.resources import METRICS_NAMESPACE

logger = Logger(service="coexist-sweeper")
tracer = Tracer(service="coexist-sweeper")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-sweeper")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    report = wiring.sweeper().sweep()
    metrics.add_metric(name="SweeperRequeued", unit=MetricUnit.Count, value=report.requeued)
    logger.info("sweep finished", extra=asdict(report))
    return asdict(report)
