"""The outbound queue: a message id on its way to the sender. Apart from the outbox so that what
only puts messages back on it (the sweeper) does not import the outbox and the send requests'
models with it."""

from __future__ import annotations

import json


class OutboundQueue:
    def __init__(self, sqs_client, queue_url: str):
        self.sqs = sqs_client
        self.url = queue_url

    def enqueue(self, message_id: str, phone_number_id: str, customer_id: str) -> None:
        self.sqs.send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps({"message_id": message_id}),
            MessageGroupId=f"{phone_number_id}#{customer_id}",  # per customer order, customers in parallel
            MessageDeduplicationId=message_id,
        )
