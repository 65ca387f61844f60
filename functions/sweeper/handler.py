"""Sweeper: on a schedule, puts messages left `queued` (or `sending`) back on the outbound queue.

What it finds and why it is safe: coexist.outbound.sweeper. Its log line and metric carry counts only.
"""

from __future__ import annotations

from dataclasses import asdict

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-sweeper")


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    report = wiring.sweeper().sweep()
    metrics.add_metric(name="SweeperRequeued", unit=MetricUnit.Count, value=report.requeued)
    logger.info("sweep finished", extra=asdict(report))
    return asdict(report)
