"""The audit trail's immutable copy: the audit table's stream, written by a small function as JSON
lines into an S3 bucket under Object Lock in COMPLIANCE mode (nobody, root included, can delete or
shorten an object's retention), encrypted with the Coexist key and versioned."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import alarms, nag
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS
from stacks.constructs.webhook_archive import WebhookArchive

STREAM_RETRIES = 10  # then the batch's stream position is parked on the dead-letter queue (alarm)


class AuditArchive(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey, table: dynamodb.ITable,
        layer: lambda_.ILayerVersion, alarm_topic: sns.ITopic, bucket_name: str,
    ) -> None:
        super().__init__(scope, id)
        # The same locked, versioned, KMS-encrypted, access-logged bucket as the webhook archive, but
        # always COMPLIANCE: an audit record must outlive anyone's wish to remove it.
        self.locked = WebhookArchive(
            self, "Bucket", bucket_name=bucket_name, key=key,
            retention_days=config.audit_retention_days, lock_mode="COMPLIANCE",
        )
        self.bucket = self.locked.bucket
        self.dead_letters = sqs.Queue(
            self, "StreamDeadLetters",
            encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dead_letters, "AwsSolutions-SQS3",
            "This queue is itself the dead-letter destination (on-failure) of the audit stream's event source mapping.",
        )
        self.function = ServiceFunction(
            self, "Function", code_dir=FUNCTIONS / "audit_archive", service="audit-archive",
            description="Copy the audit table's stream to the Object Lock audit bucket as JSON lines",
            invoked_by="the audit table's stream (event source mapping) with retries and an on-failure queue",
            timeout=Duration.seconds(resources.AUDIT_ARCHIVE_TIMEOUT_S),
            environment={"COEXIST_STAGE": config.stage, resources.AUDIT_BUCKET_ENV: self.bucket.bucket_name},
            layer=layer, key=key, log_retention_days=config.log_retention_days,
        )
        # PutObject alone (grant_put would add retention and legal-hold changes, which it never needs).
        iam.Grant.add_to_principal(
            grantee=self.function.function, actions=["s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{resources.AUDIT_PREFIX}*")],
        )
        key.grant_encrypt(self.function.function)
        self.dead_letters.grant_send_messages(self.function.function)
        self.function.function.add_event_source(event_sources.DynamoEventSource(
            table,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=resources.AUDIT_ARCHIVE_BATCH_SIZE,
            max_batching_window=Duration.seconds(5),
            bisect_batch_on_error=True,
            retry_attempts=STREAM_RETRIES,
            on_failure=event_sources.SqsDlq(self.dead_letters),
        ))
        self.function.acknowledge_wildcard(
            f"Resource::<{_logical(self.bucket)}.Arn>/{resources.AUDIT_PREFIX}*",
            "Objects under audit/ only; each batch of entries gets a new key there, so no fixed ARN exists.",
        )
        self.function.acknowledge_data_key_families()
        alarms.on_any_dead_letter(
            self, "StreamDeadLettersAlarm", queue=self.dead_letters, alarm_topic=alarm_topic,
            description="Audit entries could not be copied to the Object Lock audit bucket after "
            f"{STREAM_RETRIES} attempts; they are still in the audit table. The message names the stream "
            "range: see docs/OPERATIONS.md (Audit trail) to copy them again.",
        )


def _logical(construct) -> str:
    from aws_cdk import Stack

    return Stack.of(construct).get_logical_id(construct.node.default_child)
