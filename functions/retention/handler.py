"""Retention: daily, the messages of chats closed and quiet for longer than the retention are given
their `expires_at` (DynamoDB TTL removes them), unless the chat is under a legal hold."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-retention")


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    outcome = wiring.retention_sweeper().run()
    metrics.add_metric(name="RetentionChatsExpired", unit=MetricUnit.Count, value=outcome.get("expire", 0))
    metrics.add_metric(name="RetentionMessagesStamped", unit=MetricUnit.Count, value=outcome.get("messages_stamped", 0))
    logger.info("retention swept", extra={"outcome": outcome})  # counts only
    return outcome
