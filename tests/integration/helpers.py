"""Drive the real handlers the way API Gateway and the SQS event source mapping do."""

from __future__ import annotations

import json

from functions.api import handler as api_function
from functions.ingest import handler as ingest_function
from functions.raw_archive import handler as raw_archive_function
from functions.webhook import handler as webhook_function
from tests.conftest import API_TOKEN, Context, api_event, drain_inbound, signed_webhook_event


def post_webhook(payload, context=None) -> dict:
    return webhook_function.lambda_handler(signed_webhook_event(payload), context or Context())


def ingest_queued(aws, context=None) -> list[dict]:
    """Process everything waiting on the inbound queue; delete what succeeded (as Lambda does)."""
    results = []
    for event in drain_inbound(aws):
        result = ingest_function.lambda_handler(event, context or Context())
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for record in event["Records"]:
            if record["messageId"] not in failed:
                aws.sqs.delete_message(QueueUrl=aws.env["INBOUND_QUEUE_URL"], ReceiptHandle=record["receiptHandle"])
        results.append(result)
    return results


def archive_queued(aws, context=None) -> list[dict]:
    """Run the raw archive function over everything on its queue, in one batch as its event source
    mapping's window would gather it; delete the batch once written (as Lambda does)."""
    events = drain_inbound(aws, queue_env="RAW_ARCHIVE_QUEUE_URL")
    if not events:
        return []
    batch = {"Records": [record for event in events for record in event["Records"]]}
    result = raw_archive_function.lambda_handler(batch, context or Context())
    for record in batch["Records"]:
        aws.sqs.delete_message(QueueUrl=aws.env["RAW_ARCHIVE_QUEUE_URL"], ReceiptHandle=record["receiptHandle"])
    return [result]


def deliver(aws, *payloads) -> None:
    """Meta POSTs each payload; ingest processes the queue."""
    for payload in payloads:
        answer = post_webhook(payload)
        assert answer["statusCode"] == 200, answer
    for result in ingest_queued(aws):
        assert result == {"batchItemFailures": []}


def api(path: str, token: str | None = API_TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = api_function.lambda_handler(api_event("GET", path, headers=headers), Context())
    return response["statusCode"], json.loads(response["body"])


def messages_of(chat_id: str) -> list[dict]:
    status, body = api(f"/api/chats/{chat_id}/messages?limit=200")
    assert status == 200, body
    return body["items"]


def message(chat_id: str, wamid: str) -> dict:
    [found] = [m for m in messages_of(chat_id) if m["id"] == wamid]
    return found


def chat_of(phone_number_id: str, wa_id: str | None = None, user_id: str | None = None) -> str:
    """The opaque chat id of the customer a phone number (or a BSUID) names, from the customers
    repository (a customer only a status named has no chat to list, but its messages have the id)."""
    from coexist import wiring
    from coexist.domain.identity import Kind

    kind, value = (Kind.PHONE, wa_id) if wa_id else (Kind.BSUID, user_id)
    customer = wiring.inbox().customers.find(phone_number_id, kind, value)
    assert customer is not None, f"nobody known by that {kind.value} on {phone_number_id}"
    return customer.customer_id


class CountingTable:
    """A table that names, in order, each of its operations the code under test used."""

    def __init__(self, table):
        self.table, self.calls = table, []

    def __getattr__(self, name):
        self.calls.append(name)
        return getattr(self.table, name)
