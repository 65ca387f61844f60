"""The outbound queue: accepted sends wait here for the sender, in order per customer."""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.constructs.alarms import on_any_dead_letter


class OutboundQueue(Construct):
    """FIFO queue + FIFO dead-letter queue + an alarm on the first dead letter.

    The producer (coexist.outbound.outbox) sets MessageGroupId = "<phone_number_id>#<wa_id>" and
    MessageDeduplicationId = our message id, so there is no content-based deduplication: two
    identical texts to one customer are two messages. Groups are per recipient, so the queue runs in
    high-throughput mode (deduplication and throughput per message group): in classic mode every
    number's sends, receives, deletes and the sender's visibility changes share 300 calls/s per
    action across the whole queue. Deduplicating per group loses nothing: a message id always
    belongs to the same chat, hence to the same group.
    """

    def __init__(self, scope: Construct, id: str, *, queue_name: str, key: kms.IKey, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        fifo = dict(
            fifo=True,
            content_based_deduplication=False,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
        )
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=queue_name.removesuffix(".fifo") + "-dlq.fifo",
            retention_period=Duration.days(14),  # the SQS maximum: two weeks to notice and redrive
            **fifo,
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=queue_name,
            deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
            fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
            visibility_timeout=Duration.seconds(resources.OUTBOUND_VISIBILITY_TIMEOUT_S),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=resources.OUTBOUND_MAX_RECEIVES
            ),
            **fifo,
        )
        self.dead_letter_alarm = on_any_dead_letter(
            self,
            "DeadLettersAlarm",
            queue=self.dead_letters,
            alarm_topic=alarm_topic,
            description="Outbound messages failed to send after every retry and were parked in the DLQ "
            "(each message's record carries the reason).",
        )

    @staticmethod
    def referenced_by_name(scope: Construct, id: str, *, queue_name: str, key: kms.IKey) -> sqs.IQueue:
        """The queue as seen by a stack deployed before it (the agent API, which enqueues sends): by
        its fixed name, like the tables, so neither stack exports anything to the other."""
        return sqs.Queue.from_queue_attributes(
            scope,
            id,
            queue_arn=Stack.of(scope).format_arn(service="sqs", resource=queue_name),
            queue_url=f"https://sqs.{Aws.REGION}.{Aws.URL_SUFFIX}/{Aws.ACCOUNT_ID}/{queue_name}",
            key_arn=key.key_arn,
            fifo=True,
        )
