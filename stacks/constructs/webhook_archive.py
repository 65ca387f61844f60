"""The WORM archive of every signed webhook body, and the bucket its access logs go to."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs import nag


class WebhookArchive(Construct):
    """S3 with Object Lock: what Meta sent us can be proven later and cannot be edited or deleted
    before its retention ends (GOVERNANCE lets a privileged operator lift it; COMPLIANCE does not)."""

    def __init__(
        self, scope: Construct, id: str, *, bucket_name: str, key: kms.IKey, retention_days: int, lock_mode: str
    ) -> None:
        super().__init__(scope, id)
        retention = Duration.days(retention_days)
        # S3 server access logging cannot deliver to an SSE-KMS bucket, hence SSE-S3 here.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    transitions=[s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=Duration.days(30))],
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # one KMS call per bucket key, not per webhook body
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,  # required by Object Lock
            object_lock_enabled=True,
            object_lock_default_retention=(
                s3.ObjectLockRetention.compliance(retention)
                if lock_mode == "COMPLIANCE"
                else s3.ObjectLockRetention.governance(retention)
            ),
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="archive/",
            lifecycle_rules=[
                # Bodies are read back within minutes (large history chunks) and then rarely. S3 skips
                # objects under 128 KiB by default, so only big payloads move; small ones would cost more.
                s3.LifecycleRule(
                    transitions=[
                        s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transition_after=Duration.days(90))
                    ],
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        nag.acknowledge(
            self.access_logs, "AwsSolutions-S1",
            "This is the server-access-log bucket itself; logging it into itself would loop.",
        )
        nag.acknowledge(
            self.access_logs, "HIPAA.Security-S3BucketLoggingEnabled",
            "This is the server-access-log bucket itself; logging it into itself would loop.",
        )
        nag.acknowledge(
            self.access_logs, "HIPAA.Security-S3DefaultEncryptionKMS",
            "S3 server access logging only delivers to SSE-S3 buckets; access logs hold no message content.",
        )
        for bucket in (self.bucket, self.access_logs):
            nag.acknowledge(
                bucket, "HIPAA.Security-S3BucketReplicationEnabled",
                "Single-region deployment; durability is S3's, immutability is Object Lock's. Cross-region "
                "replication needs a second region and key the operator chooses.",
            )
