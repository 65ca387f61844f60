"""Campaigns: runs the pages the campaigns queue says are due, one record per page
(coexist.campaigns.Campaigns.run_page), reporting the records that failed so only they come back.
Its log lines carry campaign ids, page numbers and outcomes, never a recipient."""

from __future__ import annotations

import json

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from coexist import wiring
from coexist.observability import lambda_entry, powertools

logger, tracer, metrics = powertools("coexist-campaigns")
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def handle_record(record: SQSRecord) -> None:
    try:
        due = json.loads(record.body)
        campaign_id, page = str(due["campaign_id"]), int(due["page"])
    except (ValueError, KeyError, TypeError):
        logger.error("campaign record without a campaign and page", extra={"message_id": record.message_id})
        return  # nothing to retry: it can never name a page
    try:
        outcome = wiring.campaigns().run_page(campaign_id, page)
    except Exception as error:
        metrics.add_metric(name="CampaignPageFailed", unit=MetricUnit.Count, value=1)
        logger.error("campaign page failed, to be retried", extra={"campaign_id": campaign_id, "page": page, "error_type": type(error).__name__})
        raise
    logger.info("campaign page", extra={"campaign_id": campaign_id, "page": page, "outcome": outcome})


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
