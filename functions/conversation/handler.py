"""The conversation workflow's tasks: one function, the step named by `action` (see
statemachine/conversation.asl.json and coexist.conversation.steps)."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-conversation")


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context):
    logger.append_keys(action=event.get("action"), conversation_id=event.get("conversation_id"))
    result = wiring.conversation_steps(_count).run(event)
    logger.info("conversation step done")
    return result
