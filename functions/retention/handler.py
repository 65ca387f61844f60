"""Retention: daily, the messages of chats closed and quiet for longer than the retention are given
their `expires_at` (DynamoDB TTL removes them), unless the chat is under a legal hold; and the
erasures of the last two days are applied again to what a step still running wrote after them."""

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
    replayed = wiring.erasure_replay().run()
    remnants = sum(n for name, n in replayed.items() if name.endswith("_removed_again"))
    metrics.add_metric(name="ErasureRemnantsRemoved", unit=MetricUnit.Count, value=remnants)
    logger.info("erasures replayed", extra={"outcome": replayed})  # counts only
    return {**outcome, "erasures": replayed}
