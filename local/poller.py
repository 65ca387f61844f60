"""Lambda's SQS event source mapping, with ReportBatchItemFailures, as a thread.

The poller long-polls a queue, hands each batch to the function as a real SQS event and then does
what the event source mapping does with the result:

* returned normally → delete every record except those named in `batchItemFailures`;
* the response names an unknown/empty `itemIdentifier` or is not a mapping → the whole batch failed;
* raised → nothing is deleted.

Failed records are left on the queue. Lambda would let them reappear when the queue's visibility
timeout (180 s) expires; locally their visibility is cut to a short backoff (1, 2, 4 … s) so a
retry takes seconds. After `maxReceiveCount` receives, SQS itself — moto included, checked by
`tests/e2e/test_local_runtime.py` — moves the message to the DLQ on the next receive, so the
poller needs no redrive logic of its own.

Except where the function owns the visibility (`handler_sets_visibility`, the outbound queue): the
sender defers a record on purpose — a throughput wait, a backoff after 130429, an open circuit —
by calling ChangeMessageVisibility itself before it reports the record failed, and the rest of
that customer's FIFO group with it. Cutting that to the local backoff would resend early and
hammer a limit the sender is respecting. So for such a poller, records a function reports failed
keep whatever visibility they have: the function's own, or else the queue's timeout — exactly
what Lambda does. Only when the function raised (no deferral can be trusted to have happened, and
Lambda would retry the whole batch) does the poller apply the local backoff. The cost: a failed
record the function did not defer comes back after the queue's timeout (60 s outbound), as it
would deployed. (Detecting each deferral by intercepting the SQS client's calls would be more
precise, but ties local mode to how the handler builds its clients.)

FIFO queues need nothing more: SQS returns a group's messages in order and holds the rest of a
group while one of its messages is in flight, moto included.
"""

from __future__ import annotations

import base64
import logging
import threading

from local.emulator import REGION
from local.lambdas import LocalFunction

log = logging.getLogger("local")
MAX_RETRY_DELAY_S = 30


def retry_delay_s(receive_count: int) -> int:
    return min(2 ** max(receive_count - 1, 0), MAX_RETRY_DELAY_S)


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    """The event Lambda builds from one ReceiveMessage result."""
    return {"Records": [_record(m, queue_arn) for m in messages]}


def _record(message: dict, queue_arn: str) -> dict:
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {name: _attribute(value) for name, value in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _attribute(value: dict) -> dict:
    # Lambda spells message attributes in lower camel case and base64-encodes binary values.
    attribute = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def failed_message_ids(response, batch_ids: set[str]) -> set[str]:
    """Which records to keep, read the way the event source mapping reads a partial-batch response."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(batch_ids)
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)  # Lambda treats a malformed response as a failure of the whole batch
        failed.add(identifier)
    return failed


def stop_together(pollers: list["QueuePoller"], timeout: float = 10) -> None:
    """Every poller told to stop, then each waited for: each may be in a long poll of a second, and
    stopped one after the other they made stopping local mode take a second per queue."""
    for poller in pollers:
        poller._stopping.set()
    for poller in pollers:
        poller.join(timeout)


class QueuePoller(threading.Thread):
    def __init__(
        self,
        sqs,
        queue_url: str,
        queue_arn: str,
        function: LocalFunction,
        batch_size: int,
        wait_time_s: int = 1,
        handler_sets_visibility: bool = False,
    ):
        super().__init__(name=f"poller-{function.name}", daemon=True)
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.function = function
        self.batch_size = batch_size
        self.wait_time_s = wait_time_s
        self.handler_sets_visibility = handler_sets_visibility
        self._stopping = threading.Event()

    def stop(self, timeout: float = 10) -> None:
        stop_together([self], timeout)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                # SQS itself failing (e.g. moto shutting down): back off rather than spin.
                log.exception("%s: polling failed", self.name)
                self._stopping.wait(1)

    def poll_once(self) -> int:
        """Receive and process one batch; returns how many records were received."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_time_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        batch_ids = {m["MessageId"] for m in messages}
        raised = False
        try:
            failed = failed_message_ids(self.function.invoke(sqs_event(messages, self.queue_arn)), batch_ids)
        except Exception:
            log.exception("%s raised; the batch of %d stays on the queue", self.function.name, len(messages))
            failed, raised = batch_ids, True
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        self._acknowledge(done)
        if raised or not self.handler_sets_visibility:
            self._retry_soon(retry)
        if retry:
            log.warning("%s: %d of %d records failed, retrying", self.function.name, len(retry), len(messages))
        return len(messages)

    def _acknowledge(self, messages: list[dict]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )

    def _retry_soon(self, messages: list[dict]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self.sqs.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {
                        "Id": str(i),
                        "ReceiptHandle": m["ReceiptHandle"],
                        "VisibilityTimeout": retry_delay_s(int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))),
                    }
                    for i, m in enumerate(chunk)
                ],
            )

