"""The conversation workflow's tasks: one function, the step named by `action` (see
statemachine/conversation.asl.json and coexist.conversation.steps)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.resources import METRICS_NAMESPACE

logger = Logger(service="coexist-conversation")
tracer = Tracer(service="coexist-conversation")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-conversation")


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context):
    logger.append_keys(action=event.get("action"), conversation_id=event.get("conversation_id"))
    result = wiring.conversation_steps(_count).run(event)
    logger.info("conversation step done")
    return result
