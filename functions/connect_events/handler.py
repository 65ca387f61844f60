"""Amazon Connect chat streaming (SNS): the agent's messages to WhatsApp, the end of the chat to the
conversation workflow (coexist.conversation.connect).

SNS invokes asynchronously and may deliver a record twice: replies are keyed by the event id and the
end by the parked task token, so a repeat changes nothing. An error fails the invocation so Lambda
retries it, then parks it in the dead-letter queue.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.conversation.connect import parse_stream_record
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-connect-events")


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    desk = wiring.connect_desk(_count)
    outcomes = []
    for record in event.get("Records", []):
        stream_event = parse_stream_record(record)
        if stream_event is None:
            _count("ConnectEventUnreadable")
            logger.warning("not a Connect chat streaming event", extra={"sns_message_id": (record.get("Sns") or {}).get("MessageId")})
            outcomes.append("unreadable")
            continue
        outcome = desk.apply(stream_event)
        # Ids and kinds only: the content is the customer's and the agent's conversation.
        logger.info("connect event applied", extra={
            "outcome": outcome, "event_id": stream_event.id, "contact_id": stream_event.initial_contact_id,
            "type": stream_event.type, "content_type": stream_event.content_type, "role": stream_event.role,
        })
        outcomes.append(outcome)
    return {"outcomes": outcomes}
