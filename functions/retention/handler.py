"""Retention: daily, the messages of chats closed and quiet for longer than the retention are given
their `expires_at` (DynamoDB TTL removes them), unless the chat is under a legal hold."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.resources import METRICS_NAMESPACE

logger = Logger(service="coexist-retention")
tracer = Tracer(service="coexist-retention")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-retention")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    outcome = wiring.retention_sweeper().run()
    metrics.add_metric(name="RetentionChatsExpired", unit=MetricUnit.Count, value=outcome.get("expire", 0))
    metrics.add_metric(name="RetentionMessagesStamped", unit=MetricUnit.Count, value=outcome.get("messages_stamped", 0))
    logger.info("retention swept", extra={"outcome": outcome})  # counts only
    return outcome
