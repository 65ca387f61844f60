"""How messages get in and are read: webhook, inbound queue, ingest, the agent API and its REST front."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from coexist import resources
from coexist.resources import TABLES
from constructs import Construct

from stacks import lambda_runtime
from stacks.config import CoexistConfig
from stacks.constructs import nag
from stacks.constructs.domain_tables import DomainTables
from stacks.constructs.inbound_queue import InboundQueue
from stacks.constructs.rest_api import CoexistApi
from stacks.constructs.service_function import ARCHITECTURE, RUNTIME, ServiceFunction
from stacks.data_stack import DataStack

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"
LAYER_BUNDLE = ROOT / "build" / "layer"  # built by layers/build_layer.py (make layer)


class IngressStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, data: DataStack, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        key = data.key
        self.add_stack_dependency(data)
        # The archive and tables by name (see CoexistConfig.table_name): no exports between stacks.
        archive = s3.Bucket.from_bucket_attributes(
            self, "ArchiveBucket", bucket_name=config.archive_bucket_name(self.account, self.region), encryption_key=key
        )
        tables = DomainTables.referenced_by_name(self, config=config, key=key)
        if not (LAYER_BUNDLE / "python").is_dir():
            raise FileNotFoundError(f"{LAYER_BUNDLE} is missing: run `make layer` first")

        self.alarms = sns.Topic(self, "Alarms", display_name=f"Coexist {config.stage} alarms", master_key=key, enforce_ssl=True)
        if config.alarm_email:
            self.alarms.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.inbound = InboundQueue(self, "Inbound", key=key, alarm_topic=self.alarms)
        self.social_messaging_events = self._social_messaging_topic()

        self.layer = lambda_.LayerVersion(
            self,
            "SharedLibrary",
            code=lambda_.Code.from_asset(str(LAYER_BUNDLE)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=f"coexist library + Powertools + pydantic for {lambda_runtime.RUNTIME_NAME} {lambda_runtime.ARCHITECTURE}",
        )
        common = dict(layer=self.layer, key=key, log_retention_days=config.log_retention_days)
        stage_env = {"COEXIST_STAGE": config.stage}
        table_env = {env_var: table.table_name for env_var, table in tables.items()}

        # Webhook: verify the signature, archive the raw body, enqueue, answer Meta within its timeout.
        self.webhook = ServiceFunction(
            self, "Webhook", code_dir=FUNCTIONS / "webhook", service="webhook",
            description="Meta webhook: verify signature, archive, enqueue",
            invoked_by="API Gateway, synchronously; Meta retries failures for 7 days",
            environment={
                **stage_env,
                # ARNs only: the function reads the values from Secrets Manager at run time.
                "WHATSAPP_APP_SECRET_ARN": data.secrets["app_secret"].secret_arn,
                "WHATSAPP_VERIFY_TOKEN_ARN": data.secrets["verify_token"].secret_arn,
                resources.ARCHIVE_BUCKET_ENV: archive.bucket_name,
                resources.INBOUND_QUEUE_ENV: self.inbound.queue.queue_url,
            },
            **common,
        )
        for kind in ("app_secret", "verify_token"):
            self._grant_secret_read(data.secrets[kind], self.webhook, key)
        archive.grant_put(self.webhook.function, f"{resources.RAW_PREFIX}*")
        archive.grant_put(self.webhook.function, f"{resources.QUARANTINE_PREFIX}*")
        self.inbound.queue.grant_send_messages(self.webhook.function)
        self._acknowledge_archive_writes(self.webhook, config, [resources.RAW_PREFIX, resources.QUARANTINE_PREFIX])

        # Ingest: apply each envelope to the tables; failed records are retried alone, then parked.
        self.ingest = ServiceFunction(
            self, "Ingest", code_dir=FUNCTIONS / "ingest", service="ingest",
            description="Apply inbound webhook envelopes: messages, statuses, echoes, history, contacts, account updates",
            invoked_by="the inbound SQS queue's event source mapping",
            timeout=Duration.seconds(resources.INGEST_TIMEOUT_S),
            environment={**stage_env, **table_env, resources.ARCHIVE_BUCKET_ENV: archive.bucket_name},
            **common,
        )
        for table in tables.values():
            table.grant_read_write_data(self.ingest.function)
        archive.grant_read(self.ingest.function, f"{resources.RAW_PREFIX}*")  # bodies too big to inline
        archive.grant_put(self.ingest.function, f"{resources.UNHANDLED_PREFIX}*")
        self._acknowledge_archive_writes(self.ingest, config, [resources.UNHANDLED_PREFIX, resources.RAW_PREFIX])
        for family in ("s3:GetBucket*", "s3:GetObject*", "s3:List*"):
            self.ingest.acknowledge_wildcard(
                f"Action::{family}",
                "Read action family from grant_read, limited to the archive bucket and its raw/ prefix.",
            )
        self._acknowledge_index_queries(self.ingest, config)
        self.ingest.function.add_event_source(
            event_sources.SqsEventSource(
                self.inbound.queue,
                batch_size=resources.INGEST_BATCH_SIZE,
                max_batching_window=Duration.seconds(1),  # small: an agent is waiting to see the message
                report_batch_item_failures=True,
            )
        )

        # Agent API: reads for the inbox; API Gateway has already checked the Cognito JWT.
        self.agent_api = ServiceFunction(
            self, "AgentApi", code_dir=FUNCTIONS / "api", service="api",
            description="Agent API: inbox, chats, messages, contacts",
            invoked_by="API Gateway, synchronously, behind a Cognito authorizer",
            environment={**stage_env, **table_env, "COEXIST_API_AUTH": "cognito"},
            **common,
        )
        for table in tables.values():
            table.grant_read_data(self.agent_api.function)
        self._acknowledge_index_queries(self.agent_api, config)

        self.rest = CoexistApi(
            self, "PublicApi", config=config, key=key, webhook=self.webhook.function, agent_api=self.agent_api.function
        )
        CfnOutput(self, "WebhookUrl", value=self.rest.rest_api.url_for_path("/webhook"),
                  description="Callback URL for Meta's webhook configuration")
        CfnOutput(self, "UserPoolId", value=self.rest.agents.user_pool_id)
        CfnOutput(self, "ConsoleClientId", value=self.rest.console_client.user_pool_client_id)

    @staticmethod
    def _grant_secret_read(secret, fn: ServiceFunction, key) -> None:
        """What `secret.grant_read(fn)` grants, as identity policy only: the L2 would also write this
        role into the CMK's key policy, and the key lives in the data stack (a cross-stack cycle)."""
        # A secret imported by name has no known suffix; IAM matches the real ARN only with "-??????".
        arn = secret.secret_full_arn or f"{secret.secret_arn}-??????"
        iam.Grant.add_to_principal(
            grantee=fn.function, actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resource_arns=[arn],
        )
        iam.Grant.add_to_principal(
            grantee=fn.function, actions=["kms:Decrypt"], resource_arns=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
        )
        if not secret.secret_full_arn:
            fn.acknowledge_wildcard(
                f"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{secret.secret_name}-??????",
                "An existing secret named in cdk.json: '-??????' stands for the random suffix Secrets Manager "
                "appended to its ARN, which is unknown at synth time. It matches that one name only.",
            )

    @staticmethod
    def _acknowledge_archive_writes(fn: ServiceFunction, config: CoexistConfig, prefixes: list[str]) -> None:
        """The wildcards grant_put leaves on a function writing (or reading) archive prefixes."""
        bucket_arn = f"arn:<AWS::Partition>:s3:::{config.archive_bucket_name('<AWS::AccountId>', '<AWS::Region>')}"
        for prefix in prefixes:
            fn.acknowledge_wildcard(
                f"Resource::{bucket_arn}/{prefix}*",
                f"Objects under {prefix} only; each webhook body gets a new key there, so no fixed ARN exists.",
            )
        fn.acknowledge_wildcard("Action::s3:Abort*", "From grant_put: abort its own multipart uploads, same prefixes only.")
        for family in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            fn.acknowledge_wildcard(
                f"Action::{family}", "From grant_put on an SSE-KMS bucket: data-key actions on the one Coexist CMK."
            )

    @staticmethod
    def _acknowledge_index_queries(fn: ServiceFunction, config: CoexistConfig) -> None:
        for spec in TABLES:
            if spec.indexes:
                table_arn = f"arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/{config.table_name(spec.logical_id)}"
                fn.acknowledge_wildcard(
                    f"Resource::{table_arn}/index/*",
                    f"Query on the {spec.logical_id} table's own secondary indexes, which IAM addresses as index/*.",
                )

    def _social_messaging_topic(self) -> sns.Topic:
        """AWS End User Messaging Social publishes WhatsApp events here instead of calling /webhook;
        they reach the same inbound queue, as the raw body (no SNS envelope)."""
        topic = sns.Topic(
            self, "SocialMessagingEvents", display_name="Coexist: AWS End User Messaging Social events",
            master_key=self.inbound.queue.encryption_master_key, enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SocialMessagingPublishes",
                principals=[iam.ServicePrincipal("social-messaging.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        topic.add_subscription(subscriptions.SqsSubscription(self.inbound.queue, raw_message_delivery=True))
        return topic
