"""Everything Coexist keeps: the customer-managed key, the tables, the webhook archive, the secrets.

Stateful resources live apart from the functions and API so those can be replaced freely; the
tables, bucket and key are retained if this stack is ever deleted.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import nag
from stacks.constructs.crm_events import CrmEvents
from stacks.constructs.domain_tables import DomainTables
from stacks.constructs.webhook_archive import WebhookArchive

# The three credentials a WhatsApp Cloud API integration needs, by config key.
SECRET_KINDS = {
    "app_secret": "Meta app secret: the webhook verifies X-Hub-Signature-256 with it.",
    "verify_token": "Token typed into Meta's webhook form; echoed check on the GET handshake.",
    "access_token": "Graph API system-user access token, used to send messages.",
}


class DataStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        self.key = kms.Key(
            self,
            "Key",
            description=f"Coexist {config.stage}: tables, queues, topics, archive, logs, secrets and workflow data",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self._allow_service_principals(self.key, config)

        self.tables = DomainTables(self, "Tables", config=config, key=self.key)
        self.archive = WebhookArchive(
            self,
            "Archive",
            bucket_name=config.archive_bucket_name(Aws.ACCOUNT_ID, Aws.REGION),
            key=self.key,
            retention_days=config.archive_retention_days,
            lock_mode=config.archive_lock_mode,
        )
        self._back_up_tables()
        self.secrets = {kind: self._secret(config, kind, purpose) for kind, purpose in SECRET_KINDS.items()}
        self.crm_events = CrmEvents(self, "CrmEvents", config=config, key=self.key)

    def _allow_service_principals(self, key: kms.Key, config: CoexistConfig) -> None:
        """Services that encrypt with the key on our behalf. The key policy cannot name resources in
        the ingress stack (that would be a cycle), so each grant is scoped to this account instead."""
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                    }
                },
            )
        )
        # The conversation state machine is encrypted with this key and logs to an encrypted group:
        # CloudWatch Logs' delivery service reads its log records through it (what the Step Functions
        # documentation asks for, and what CDK would add to the key itself; written here in the
        # open instead of by the conversations stack reaching into this one).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="LogDeliveryReadsStateMachineLogs",
                principals=[iam.ServicePrincipal("delivery.logs.amazonaws.com")],
                actions=["kms:Decrypt"],
                resources=["*"],
            )
        )
        # Publishers to the encrypted SNS topics and SNS delivering into the encrypted inbound queue
        # (and Amazon Connect, streaming a handed-off chat's events, when it is configured).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ServicesPublishEncryptedMessages",
                principals=[
                    iam.ServicePrincipal("sns.amazonaws.com"),
                    iam.ServicePrincipal("social-messaging.amazonaws.com"),
                    iam.ServicePrincipal("cloudwatch.amazonaws.com"),
                    *([iam.ServicePrincipal("connect.amazonaws.com")] if config.connect else []),
                ],
                actions=["kms:GenerateDataKey*", "kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )

    def _back_up_tables(self) -> None:
        """Daily and monthly backups kept a year, in a CMK-encrypted vault (PITR covers the last 35 days)."""
        vault = backup.BackupVault(self, "BackupVault", encryption_key=self.key, removal_policy=RemovalPolicy.RETAIN)
        plan = backup.BackupPlan.daily_monthly1_year_retention(self, "BackupPlan", vault)
        selection = plan.add_selection(
            "Tables",
            resources=[backup.BackupResource.from_dynamo_db_table(t) for t in self.tables.tables],
        )
        role = selection.node.find_child("Role")
        nag.acknowledge(
            role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup]",
            "AWS Backup's own service-role policy, maintained by AWS for exactly this role's job.",
        )

    def _secret(self, config: CoexistConfig, kind: str, purpose: str) -> secretsmanager.ISecret:
        existing = getattr(config.secrets, f"{kind}_name")
        if existing:
            return secretsmanager.Secret.from_secret_name_v2(self, kind, existing)
        secret = secretsmanager.Secret(
            self,
            kind,
            secret_name=f"{config.prefix}/whatsapp/{kind.replace('_', '-')}",
            description=f"{purpose} Created with a random placeholder; put the real value in (docs/DEPLOY.md).",
            encryption_key=self.key,
            # Random, never a known default: a guessable app secret would let anyone forge webhooks.
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=48, exclude_punctuation=True),
        )
        reason = "Issued by Meta (or typed into Meta's dashboard); rotated there, not by a Lambda rotator."
        nag.acknowledge(secret, "AwsSolutions-SMG4", reason)
        nag.acknowledge(secret, "HIPAA.Security-SecretsManagerRotationEnabled", reason)
        return secret
