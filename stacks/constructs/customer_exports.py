"""Exports of everything held about one customer: the agent API queues a request, the exporter
function builds the JSON document into a private, KMS-encrypted bucket, and the API hands out a
15-minute presigned URL. Files expire after `EXPORTS_KEPT_DAYS`."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import alarms, nag
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS

# What an export reads: the chat and its customer, messages, contact and consent, the audit trail.
READS = (resources.CHATS, resources.MESSAGES, resources.CONTACTS, resources.NUMBERS, resources.CUSTOMERS, resources.AUDIT)


class CustomerExports(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey, tables: dict[str, dynamodb.ITable],
        layer: lambda_.ILayerVersion, alarm_topic: sns.ITopic, bucket_name: str, access_logs: s3.IBucket,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self, "Bucket", bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS, encryption_key=key, bucket_key_enabled=True,
            enforce_ssl=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL, versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs, server_access_logs_prefix="exports/",
            lifecycle_rules=[s3.LifecycleRule(
                expiration=Duration.days(resources.EXPORTS_KEPT_DAYS),
                noncurrent_version_expiration=Duration.days(1),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.bucket, "HIPAA.Security-S3BucketReplicationEnabled",
            "Export files are copies made on request and deleted after a week; the records they copy are backed up.",
        )
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self, "Queue", queue_name=config.exports_queue_name,
            encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            visibility_timeout=Duration.seconds(resources.EXPORTS_VISIBILITY_TIMEOUT_S),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=resources.EXPORTS_MAX_RECEIVES),
        )
        self.function = ServiceFunction(
            self, "Function", code_dir=FUNCTIONS / "exporter", service="exporter",
            description="Build a customer's export: chat, messages, contact and consent, audit of access",
            invoked_by="the exports SQS queue's event source mapping",
            timeout=Duration.seconds(resources.EXPORTER_TIMEOUT_S),
            memory_size=1024,
            environment={
                "COEXIST_STAGE": config.stage,
                **{spec.env_var: tables[spec.env_var].table_name for spec in (*READS, resources.PRIVACY)},
                resources.EXPORTS_BUCKET_ENV: self.bucket.bucket_name,
            },
            layer=layer, key=key, log_retention_days=config.log_retention_days,
        )
        self.function.grant_tables(tables, config, read=READS, read_write=(resources.PRIVACY,))
        iam.Grant.add_to_principal(
            grantee=self.function.function, actions=["s3:PutObject"],
            resource_arns=[self.bucket.arn_for_objects(f"{resources.EXPORTS_PREFIX}*")],
        )
        key.grant_encrypt(self.function.function)
        self.function.acknowledge_wildcard(
            f"Resource::<{_logical(self.bucket)}.Arn>/{resources.EXPORTS_PREFIX}*",
            "Objects under exports/ only; each export gets a new key there, so no fixed ARN exists.",
        )
        self.function.function.add_event_source(event_sources.SqsEventSource(
            self.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=2,
        ))
        alarms.on_any_dead_letter(
            self, "DeadLettersAlarm", queue=self.dead_letters, alarm_topic=alarm_topic,
            description="A customer's export failed three times and is marked failed; the exporter's log names "
            "the export id and the error type. Fix the cause and ask for the export again.",
        )

    @staticmethod
    def referenced_by_name(scope: Construct, *, config: CoexistConfig, key: kms.IKey, account: str, region: str):
        """The queue and bucket as the agent API's stack (deployed first) names them: no exports."""
        from aws_cdk import Aws, Stack

        queue = sqs.Queue.from_queue_attributes(
            scope, "ExportsQueue",
            queue_arn=Stack.of(scope).format_arn(service="sqs", resource=config.exports_queue_name),
            queue_url=f"https://sqs.{Aws.REGION}.{Aws.URL_SUFFIX}/{Aws.ACCOUNT_ID}/{config.exports_queue_name}",
            key_arn=key.key_arn,
        )
        bucket = s3.Bucket.from_bucket_attributes(
            scope, "ExportsBucket", bucket_name=config.exports_bucket_name(account, region), encryption_key=key,
        )
        return queue, bucket


def _logical(construct) -> str:
    from aws_cdk import Stack

    return Stack.of(construct).get_logical_id(construct.node.default_child)
