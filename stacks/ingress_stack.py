"""How messages get in and are read: webhook, inbound queue, ingest, the raw archive, the agent API and
its REST front.

Every signed body is kept under raw/ in the archive. A body small enough to travel inline to ingest
goes to the raw archive queue, whose function writes each batch as one JSON-lines object (an S3 PUT
per webhook cost more than anything else on the inbound path); a bigger one the webhook puts there
itself, since ingest reads it back from there.

The agent API also accepts sends: it stores them as queued and puts them on the outbound stack's
FIFO queue, which it knows by name (that stack deploys after this one and pages this one's alarm topic).
Ingest starts conversation workflows and both ingest and the agent API wake their parked tasks; they
know the conversations stack's state machine by its fixed name in the same way.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from coexist import resources
from coexist.resources import TABLES
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.console_stack import ConsoleStack
from stacks.constructs import alarms
from stacks.constructs.console_sign_in import ConsoleSignIn
from stacks.constructs.domain_tables import DomainTables
from stacks.constructs.inbound_queue import InboundQueue
from stacks.constructs.campaigns import CampaignDriver
from stacks.constructs.connect_handoff import contacts_of
from stacks.constructs.outbound_queue import OutboundQueue
from stacks.constructs.rest_api import CoexistApi
from stacks.constructs.service_function import BOT_LOOP_ACTIONS, TASK_TOKEN_ACTIONS, ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS, shared_layer
from stacks.data_stack import DataStack


class IngressStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, data: DataStack, console: ConsoleStack, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        key = data.key
        self.add_stack_dependency(data)
        # The archive and tables by name (see CoexistConfig.table_name): no exports between stacks.
        archive = s3.Bucket.from_bucket_attributes(
            self, "ArchiveBucket", bucket_name=config.archive_bucket_name(self.account, self.region), encryption_key=key
        )
        tables = DomainTables.referenced_by_name(self, config=config, key=key)

        self.alarms = sns.Topic(self, "Alarms", display_name=f"Coexist {config.stage} alarms", master_key=key, enforce_ssl=True)
        if config.alarm_email:
            self.alarms.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        self.inbound = InboundQueue(self, "Inbound", key=key, alarm_topic=self.alarms)
        self.raw_archive_queue = InboundQueue(
            self, "RawArchive", key=key, alarm_topic=self.alarms,
            visibility_timeout=Duration.seconds(resources.RAW_ARCHIVE_VISIBILITY_TIMEOUT_S),
            max_receives=resources.RAW_ARCHIVE_MAX_RECEIVES,
            alarm_description=f"Raw webhook bodies could not be written to the archive after {resources.RAW_ARCHIVE_MAX_RECEIVES} "
            "attempts and were parked in the DLQ, where they are still held for 14 days. Fix the cause (the archive "
            "bucket or its key; see the raw archive function's log), then redrive the DLQ to its queue.",
        )
        self.social_messaging_events = self._social_messaging_topic()

        self.layer = shared_layer(self)
        common = dict(layer=self.layer, key=key, log_retention_days=config.log_retention_days)
        stage_env = {"COEXIST_STAGE": config.stage}
        table_env = {env_var: table.table_name for env_var, table in tables.items()}
        # Created by the conversations stack, which deploys after this one.
        self.conversation_state_machine_arn = self.format_arn(
            service="states", resource="stateMachine", resource_name=config.conversation_state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        conversation_env = {
            resources.CONVERSATION_STATE_MACHINE_ENV: self.conversation_state_machine_arn,
            **config.conversation_environment(),  # the takeover cool-down the signals apply
        }

        # Webhook: verify the signature, enqueue the body for ingest and for the raw archive (or put a
        # body too big to travel inline under raw/ itself), answer Meta within its timeout.
        self.webhook = ServiceFunction(
            self, "Webhook", code_dir=FUNCTIONS / "webhook", service="webhook",
            description="Meta webhook: verify signature, enqueue for ingest and the raw archive",
            invoked_by="API Gateway, synchronously; Meta retries failures for 7 days",
            environment={
                **stage_env,
                # ARNs only: the function reads the values from Secrets Manager at run time.
                "WHATSAPP_APP_SECRET_ARN": data.secrets["app_secret"].secret_arn,
                "WHATSAPP_VERIFY_TOKEN_ARN": data.secrets["verify_token"].secret_arn,
                resources.ARCHIVE_BUCKET_ENV: archive.bucket_name,
                resources.INBOUND_QUEUE_ENV: self.inbound.queue.queue_url,
                resources.RAW_ARCHIVE_QUEUE_ENV: self.raw_archive_queue.queue.queue_url,
            },
            **common,
        )
        for kind in ("app_secret", "verify_token"):
            self.webhook.grant_secret_read(data.secrets[kind], key)
        # raw/: bodies too big to travel inline; quarantine/: bodies that are not a WhatsApp webhook.
        archive.grant_put(self.webhook.function, f"{resources.RAW_PREFIX}*")
        archive.grant_put(self.webhook.function, f"{resources.QUARANTINE_PREFIX}*")
        self.inbound.queue.grant_send_messages(self.webhook.function)
        self.raw_archive_queue.queue.grant_send_messages(self.webhook.function)
        self._acknowledge_archive_writes(self.webhook, config, [resources.RAW_PREFIX, resources.QUARANTINE_PREFIX])
        self.raw_archive = self._raw_archive_writer(config, archive, key, common, stage_env)

        # Ingest: apply each envelope to the tables; failed records are retried alone, then parked.
        self.ingest = ServiceFunction(
            self, "Ingest", code_dir=FUNCTIONS / "ingest", service="ingest",
            description="Apply inbound webhook envelopes: messages, statuses, echoes, history, contacts, account updates",
            invoked_by=f"the inbound SQS queue's event source mapping, at most {config.ingest_max_concurrency} batches at once",
            timeout=Duration.seconds(resources.INGEST_TIMEOUT_S),
            environment={**stage_env, **table_env, **conversation_env, resources.ARCHIVE_BUCKET_ENV: archive.bucket_name,
                         # End User Messaging Social bodies, archived through the raw archive's queue
                         resources.RAW_ARCHIVE_QUEUE_ENV: self.raw_archive_queue.queue.queue_url,
                         resources.CONVERSATION_FUNCTION_ENV: config.conversation_function_name,  # the bot's next turn
                         **config.rate_card_environment()},  # ingest prices what Meta delivers
            task_token_actions=BOT_LOOP_ACTIONS,  # a customer's message or an echo wakes the workflow
            **common,
        )
        # Every table but the audit trail, which only the agent API writes (and only appends to), the
        # customers' rights (the agent API) and the console's live connections (the live channel).
        self.ingest.grant_tables(tables, config, read_write=tuple(
            t for t in TABLES if t not in (resources.AUDIT, resources.PRIVACY, resources.CONNECTIONS)))
        # A customer message outside a conversation starts one (deterministic execution names).
        self.ingest.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.conversation_state_machine_arn])
        )
        # A customer's message runs the bot's next turn (BotLoop), on the function the conversations stack names.
        self.ingest.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[config.conversation_function_arn(self)])
        )
        # Two chats of one person merged: the conversation the merge superseded is stopped, and its
        # Amazon Connect contact, if it had one, ended.
        self._grant_stopping_conversations(self.ingest, config)
        if config.connect:
            self._grant_ending_connect_contacts(self.ingest, config)
        self.raw_archive_queue.queue.grant_send_messages(self.ingest.function)
        archive.grant_read(self.ingest.function, f"{resources.RAW_PREFIX}*")  # bodies too big to inline
        # unhandled/: changes this version does not model; quarantine/: records that hold no webhook;
        # raw/: End User Messaging Social bodies, which reach the queue without passing the webhook,
        # when one cannot travel through the raw archive's queue (not UTF-8, or too big).
        ingest_writes = [resources.UNHANDLED_PREFIX, resources.QUARANTINE_PREFIX, resources.RAW_PREFIX]
        for prefix in ingest_writes:
            archive.grant_put(self.ingest.function, f"{prefix}*")
        self._acknowledge_archive_writes(self.ingest, config, ingest_writes)
        for family in ("s3:GetBucket*", "s3:GetObject*", "s3:List*"):
            self.ingest.acknowledge_wildcard(
                f"Action::{family}",
                "Read action family from grant_read, limited to the archive bucket and its raw/ prefix.",
            )
        self.ingest.function.add_event_source(
            event_sources.SqsEventSource(
                self.inbound.queue,
                batch_size=resources.INGEST_BATCH_SIZE,
                max_batching_window=Duration.seconds(1),  # small: an agent is waiting to see the message
                report_batch_item_failures=True,
                max_concurrency=config.ingest_max_concurrency,  # a backlog cannot take the account's concurrency
            )
        )

        self._alarm_on_lost_or_kept_webhooks()

        # Agent API: the inbox reads, sending (policy check, store as queued, enqueue) and the
        # on-demand templates sync. API Gateway has already checked the Cognito JWT.
        access_token = data.secrets["access_token"]
        self.outbound_queue = OutboundQueue.referenced_by_name(
            self, "OutboundQueue", queue_name=config.outbound_queue_name, key=key
        )  # created by the outbound stack, which deploys after this one
        self.campaigns_queue = CampaignDriver.referenced_by_name(
            self, "CampaignsQueue", queue_name=config.campaigns_queue_name, key=key
        )  # likewise
        self.agent_api = ServiceFunction(
            self, "AgentApi", code_dir=FUNCTIONS / "api", service="api",
            description="Agent API: inbox, chats, messages, contacts, sending, templates",
            invoked_by="API Gateway, synchronously, behind a Cognito authorizer",
            environment={
                **stage_env, **table_env, **conversation_env, "COEXIST_API_AUTH": "cognito",
                resources.CONSOLE_ORIGIN_ENV: console.url,  # the one origin CORS allows
                resources.OUTBOUND_QUEUE_ENV: self.outbound_queue.queue_url,
                resources.CAMPAIGNS_QUEUE_ENV: self.campaigns_queue.queue_url,
                **config.graph_api_environment(access_token.secret_arn),
                **config.numbers_environment(),
                **config.waba_environment(),
                **config.rate_card_environment(),
            },
            # Accept, release, close, transfer and an agent's reply wake the workflow's parked tasks;
            # the agent API starts a conversation's execution only when an agent takes a bot phase over.
            task_token_actions=TASK_TOKEN_ACTIONS,
            **common,
        )
        self.agent_api.grant_tables(
            tables, config,
            # messages: the queued outbound message; chats: its last-message time and the conversation
            # state; task tokens: the workflow waits an agent's action ends; templates: the sync; agents: the directory, availability and capacity;
            # customers: finding a chat by phone number or BSUID, and creating the customer a consent
            # import or a campaign names by phone number before they ever wrote; contacts: the consent ledger;
            # costs: the cost report; reminders: scheduling and cancelling them; campaigns: creating
            # and moving them, their progress and the messaging-limit ledger.
            read_write=(resources.MESSAGES, resources.CHATS, resources.TASK_TOKENS, resources.TEMPLATES, resources.AGENTS, resources.CONTACTS, resources.REMINDERS,
                        resources.CAMPAIGNS, resources.CUSTOMERS),
            read=(resources.NUMBERS, resources.ACCOUNTS, resources.COSTS),
        )
        # The audit trail: read for GET /api/audit; appended to by PutItem alone (no UpdateItem, no
        # DeleteItem, no batch writes), each entry put under the condition that it is new.
        self.agent_api.grant_tables(tables, config, read=(resources.AUDIT,))
        tables[resources.AUDIT.env_var].grant(self.agent_api.function, "dynamodb:PutItem")
        for name, value in config.retention_environment(resources.AUDIT).items():  # each entry's `expires_at`
            self.agent_api.function.add_environment(name, value)
        self._grant_customer_rights(config, tables, key)
        # An agent who answers while the bot has the chat takes it over: the bot phase, which runs
        # outside the workflow, hands the conversation to its execution, started there.
        self.agent_api.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.conversation_state_machine_arn])
        )
        self.campaigns_queue.grant_send_messages(self.agent_api.function)  # a campaign's first page
        self.agent_api.grant_secret_read(access_token, key)
        self.outbound_queue.grant_send_messages(self.agent_api.function)
        self.agent_api.acknowledge_data_key_families()  # the encrypted queue, like the tables

        self.rest = CoexistApi(
            self, "PublicApi", config=config, key=key, webhook=self.webhook.function, agent_api=self.agent_api.function,
            console_url=console.url,
        )
        self.console_sign_in = ConsoleSignIn(self, "ConsoleSignIn", config=config, pool=self.rest.agents)
        CfnOutput(self, "WebhookUrl", value=self.rest.rest_api.url_for_path("/webhook"),
                  description="Callback URL for Meta's webhook configuration")
        CfnOutput(self, "UserPoolId", value=self.rest.agents.user_pool_id)
        CfnOutput(self, "ConsoleClientId", value=self.rest.console_client.user_pool_client_id)
        CfnOutput(self, "ConsoleSignInUrl", value=self.console_sign_in.base_url, description="Cognito hosted sign-in")

    def _raw_archive_writer(self, config: CoexistConfig, archive: s3.IBucket, key, common: dict, stage_env: dict) -> ServiceFunction:
        """Drains the raw archive queue: each batch becomes one JSON-lines object under raw/. A batch
        that fails is retried whole (no partial responses: its object is all or nothing)."""
        writer = ServiceFunction(
            self, "RawArchiveWriter", code_dir=FUNCTIONS / "raw_archive", service="raw-archive",
            description="Write the raw archive queue's webhook bodies to the archive, one JSON-lines object per batch",
            invoked_by=f"the raw archive SQS queue's event source mapping, batches of up to {resources.RAW_ARCHIVE_BATCH_SIZE} "
            f"bodies gathered for up to {resources.RAW_ARCHIVE_WINDOW_S} s",
            timeout=Duration.seconds(resources.RAW_ARCHIVE_TIMEOUT_S),
            environment={**stage_env, resources.ARCHIVE_BUCKET_ENV: archive.bucket_name},
            **common,
        )
        # PutObject alone (grant_put would add retention and legal-hold changes, which it never needs).
        iam.Grant.add_to_principal(
            grantee=writer.function, actions=["s3:PutObject"],
            resource_arns=[archive.arn_for_objects(f"{resources.RAW_PREFIX}*")],
        )
        key.grant_encrypt(writer.function)  # the bucket encrypts with the Coexist key
        bucket_arn = f"arn:<AWS::Partition>:s3:::{config.archive_bucket_name('<AWS::AccountId>', '<AWS::Region>')}"
        writer.acknowledge_wildcard(
            f"Resource::{bucket_arn}/{resources.RAW_PREFIX}*",
            f"Objects under {resources.RAW_PREFIX} only; each batch of bodies gets a new key there, so no fixed ARN exists.",
        )
        writer.acknowledge_data_key_families()
        writer.function.add_event_source(
            event_sources.SqsEventSource(
                self.raw_archive_queue.queue,
                batch_size=resources.RAW_ARCHIVE_BATCH_SIZE,
                # Lambda's longest window: at low volume it is what makes one object hold many bodies.
                max_batching_window=Duration.seconds(resources.RAW_ARCHIVE_WINDOW_S),
                # SQS's least: a backlog cannot take the account's concurrency, and batches stay full.
                max_concurrency=resources.RAW_ARCHIVE_MAX_CONCURRENCY,
            )
        )
        return writer

    def _grant_stopping_conversations(self, function: ServiceFunction, config: CoexistConfig) -> None:
        function.role.add_to_principal_policy(iam.PolicyStatement(actions=["states:StopExecution"], resources=[self.format_arn(
            service="states", resource="execution", resource_name=f"{config.conversation_state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )]))
        function.acknowledge_wildcard(
            f"Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{config.conversation_state_machine_name}:*",
            "StopExecution on the conversation state machine's executions only; their names are per conversation.",
        )

    def _grant_ending_connect_contacts(self, function: ServiceFunction, config: CoexistConfig) -> None:
        contacts, finding = contacts_of(self, config.connect)
        function.role.add_to_principal_policy(iam.PolicyStatement(actions=["connect:StopContact"], resources=[contacts]))
        function.acknowledge_wildcard(
            finding, "StopContact on contacts of the one configured Connect instance: a contact's id exists only at run time.")

    def _grant_customer_rights(self, config: CoexistConfig, tables: dict, key) -> None:
        """Exports (queue a request, hand out a presigned link to the file), legal holds and erasure
        (the customer's contact and identity rows are deleted; messages and chats are already written)."""
        from stacks.constructs.customer_exports import CustomerExports

        queue, bucket = CustomerExports.referenced_by_name(self, config=config, key=key, account=self.account, region=self.region)
        self.agent_api.function.add_environment(resources.EXPORTS_QUEUE_ENV, queue.queue_url)
        self.agent_api.function.add_environment(resources.EXPORTS_BUCKET_ENV, bucket.bucket_name)
        self.agent_api.function.add_environment(resources.ARCHIVE_RETENTION_ENV, str(config.archive_retention_days))
        # The contact and identity rows erasure deletes are in the API's read-write tables already.
        self.agent_api.grant_tables(tables, config, read_write=(resources.PRIVACY,))
        self._grant_stopping_conversations(self.agent_api, config)  # erasure stops a live conversation
        queue.grant_send_messages(self.agent_api.function)
        # The presigned URL is signed with this role: it may read the export files and nothing else.
        iam.Grant.add_to_principal(
            grantee=self.agent_api.function, actions=["s3:GetObject"],
            resource_arns=[bucket.arn_for_objects(f"{resources.EXPORTS_PREFIX}*")],
        )
        iam.Grant.add_to_principal(
            grantee=self.agent_api.function, actions=["kms:Decrypt"], resource_arns=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}},
        )
        self.agent_api.acknowledge_wildcard(
            f"Resource::arn:<AWS::Partition>:s3:::{config.exports_bucket_name('<AWS::AccountId>', '<AWS::Region>')}/{resources.EXPORTS_PREFIX}*",
            "Export files under exports/ only (each export its own key), read to sign their presigned links.",
        )

    def _alarm_on_lost_or_kept_webhooks(self) -> None:
        alarms.on_any_count(
            self, "WebhookFailedAlarm", metric=self.webhook.count_metric("WebhookFailed"), alarm_topic=self.alarms,
            description="A signed webhook could not be archived or queued; Meta was answered 503 and delivers it "
            "again (for up to 7 days). Check the webhook function's log, the archive bucket and the inbound and raw "
            "archive queues.",
        )
        for fn, metric, received_by in ((self.webhook, "WebhookQuarantined", "the webhook"), (self.ingest, "IngestQuarantined", "ingest")):
            alarms.on_any_count(
                self, f"{metric}Alarm", metric=fn.count_metric(metric), alarm_topic=self.alarms,
                description=f"A body {received_by} received is not a WhatsApp webhook; it is kept under quarantine/ "
                "in the archive and nothing was applied. Look at it there: a new Meta format, or a probe.",
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
        fn.acknowledge_data_key_families()

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
