"""The inbound queue: webhook envelopes wait here between the fast 200 to Meta and ingest. The raw
archive queue (bodies waiting to be written to the archive in batches) is built the same way."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct


class InboundQueue(Construct):
    """Queue + dead-letter queue + an alarm as soon as anything is parked: nothing is lost silently.

    The defaults are the inbound queue's; another consumer passes its own visibility timeout (at
    least six times its function's timeout, as Lambda asks), receives before parking and alarm text.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        key: kms.IKey,
        alarm_topic: sns.ITopic,
        visibility_timeout: Duration = Duration.seconds(resources.INBOUND_VISIBILITY_TIMEOUT_S),
        max_receives: int = resources.INBOUND_MAX_RECEIVES,
        alarm_description: str = "Inbound webhook envelopes failed ingest repeatedly and were parked in the DLQ.",
    ) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),  # the SQS maximum: two weeks to notice and redrive
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.hours(1),  # fewer KMS calls at webhook rates
            enforce_ssl=True,
            visibility_timeout=visibility_timeout,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=max_receives),
        )
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description=alarm_description,
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
