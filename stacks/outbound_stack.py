"""How messages get out: the outbound FIFO queue, the sender and the templates sync.

Deployed after the ingress stack, whose alarm topic it pages. The agent API (in the ingress stack)
enqueues sends; it refers to the outbound queue by its fixed name, so the two stacks exchange no
other value: the ingress stack can be deployed first, and each stack builds its own layer version.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import alarms
from stacks.constructs.campaigns import CampaignDriver
from stacks.constructs.domain_tables import DomainTables
from stacks.constructs.outbound_queue import OutboundQueue
from stacks.constructs.reminders import Reminders
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS, shared_layer
from stacks.data_stack import DataStack
from stacks.ingress_stack import IngressStack

TEMPLATES_TIMEOUT_S = 60
TEMPLATES_SYNC_EVERY = Duration.hours(1)


class OutboundStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, data: DataStack, ingress: IngressStack, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        key = data.key
        self.add_stack_dependency(data)
        self.add_stack_dependency(ingress)
        tables = DomainTables.referenced_by_name(self, config=config, key=key)
        self.layer = shared_layer(self)
        alarm_topic = ingress.alarms
        access_token = data.secrets["access_token"]
        common = dict(layer=self.layer, key=key, log_retention_days=config.log_retention_days)
        stage_env = {"COEXIST_STAGE": config.stage}

        def table_env(*specs) -> dict[str, str]:
            return {spec.env_var: tables[spec.env_var].table_name for spec in specs}

        self.outbound = OutboundQueue(self, "Outbound", queue_name=config.outbound_queue_name, key=key, alarm_topic=alarm_topic)

        # Sender: policy re-check, pacing, the Graph API call, the verdict on Meta's answer.
        self.sender = ServiceFunction(
            self, "Sender", code_dir=FUNCTIONS / "sender", service="sender",
            description="Send queued outbound messages to Meta: paced per number and recipient, ordered per customer",
            invoked_by="the outbound FIFO queue's event source mapping",
            timeout=Duration.seconds(resources.SENDER_TIMEOUT_S),
            environment={
                **stage_env,
                **table_env(
                    resources.MESSAGES, resources.NUMBERS, resources.CONTACTS, resources.CHATS,
                    resources.ACCOUNTS, resources.THROTTLE, resources.TEMPLATES, resources.CAMPAIGNS,
                ),
                resources.OUTBOUND_QUEUE_ENV: self.outbound.queue.queue_url,
                resources.OUTBOUND_DLQ_ENV: self.outbound.dead_letters.queue_url,
                **config.graph_api_environment(access_token.secret_arn),
                **config.numbers_environment(),
            },
            **common,
        )
        self.sender.grant_tables(
            tables, config,
            # campaigns: a campaign message's failure counts in its progress.
            read_write=(resources.MESSAGES, resources.CONTACTS, resources.CHATS, resources.THROTTLE, resources.CAMPAIGNS),
            read=(resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES),
        )
        self.sender.grant_secret_read(access_token, key)
        # The event source grants receive, delete and ChangeMessageVisibility, which the sender uses
        # to hold back a message (and the rest of its group) until its throughput token is due.
        self.sender.function.add_event_source(
            event_sources.SqsEventSource(
                self.outbound.queue,
                batch_size=resources.SENDER_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=resources.SENDER_MAX_CONCURRENCY,
            )
        )
        # A message whose attempts ran out is moved to the DLQ by the sender (with the reason).
        self.outbound.dead_letters.grant_send_messages(self.sender.function)
        self.sender.acknowledge_data_key_families()  # the encrypted queue, like the tables
        self._grant_social_messaging(config)
        self.outcome_unknown_alarm = alarms.on_any_count(
            self, "SenderOutcomeUnknownAlarm",
            metric=self.sender.count_metric(resources.SENDER_OUTCOME_UNKNOWN_METRIC),
            alarm_topic=alarm_topic,
            description="A send was cut off in the middle of its call to Meta: the customer may or may not "
            "have the message. It is failed as outcome_unknown and never re-sent; a late delivery status "
            "still reaches it. Check the chat and resend by hand if the customer did not get it.",
        )
        self.circuit_alarm = alarms.on_any_count(
            self, "SenderCircuitOpenedAlarm",
            metric=self.sender.count_metric("SenderCircuitOpened"),
            alarm_topic=alarm_topic,
            description="Sending stopped for a number: Meta answered that the access token expired or is "
            "invalid (190) or that the number is blocked (368). Fix the token or the account; the "
            "number's messages wait in the outbound queue meanwhile.",
        )

        self.campaigns = CampaignDriver(
            self, "Campaigns", config=config, tables=tables, key=key, outbound_queue=self.outbound.queue,
            alarm_topic=alarm_topic, common=common, environment={**stage_env, **config.numbers_environment()},
        )
        self.templates = self._templates_sync(config, tables, access_token, alarm_topic, common, stage_env, table_env)
        self.sweeper = self._sweeper(config, tables, alarm_topic, common, stage_env, table_env)
        self.reminders = Reminders(self, "Reminders", config=config, key=key, tables=tables, layer=self.layer,
                                   outbound_queue=self.outbound.queue, alarm_topic=alarm_topic)

    def _templates_sync(self, config, tables, access_token, alarm_topic, common, stage_env, table_env) -> ServiceFunction:
        """Hourly, the approved templates of every configured account; on demand the agent API runs
        the same sync itself (POST /api/templates/sync)."""
        dead_letters = sqs.Queue(
            self, "TemplatesSyncDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=common["key"],
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        templates = ServiceFunction(
            self, "TemplatesSync", code_dir=FUNCTIONS / "templates", service="templates",
            description="Sync WhatsApp message templates from Meta into the templates table",
            invoked_by="an hourly EventBridge schedule, asynchronously",
            timeout=Duration.seconds(TEMPLATES_TIMEOUT_S),
            environment={
                **stage_env,
                **table_env(resources.TEMPLATES, resources.NUMBERS),
                **config.graph_api_environment(access_token.secret_arn),
                **config.waba_environment(),
            },
            dead_letter_queue=dead_letters,
            **common,
        )
        templates.grant_tables(tables, config, read_write=(resources.TEMPLATES,), read=(resources.NUMBERS,))
        # Lambda parks failed async events with the function's role: sqs:SendMessage (added by CDK)
        # and, the queue being CMK-encrypted, the key's data-key actions, granted here explicitly.
        dead_letters.grant_send_messages(templates.function)
        templates.acknowledge_data_key_families()
        templates.grant_secret_read(access_token, common["key"])
        alarms.on_any_dead_letter(
            self, "TemplatesSyncDeadLettersAlarm", queue=dead_letters, alarm_topic=alarm_topic,
            description="A scheduled templates sync failed three times (Lambda's two async retries included).",
        )
        self.schedule = events.Rule(
            self, "TemplatesSyncSchedule",
            description="Sync WhatsApp message templates from Meta",
            schedule=events.Schedule.rate(TEMPLATES_SYNC_EVERY),
            targets=[
                targets.LambdaFunction(
                    templates.function,
                    retry_attempts=2,
                    max_event_age=TEMPLATES_SYNC_EVERY,  # a newer run is due by then anyway
                )
            ],
        )
        return templates

    def _sweeper(self, config, tables, alarm_topic, common, stage_env, table_env) -> ServiceFunction:
        """Every few minutes, messages stored for sending but left behind (an enqueue that failed and
        was never retried) go back on the outbound queue (coexist.outbound.sweeper)."""
        dead_letters = sqs.Queue(
            self, "SweeperDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=common["key"],
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        sweeper = ServiceFunction(
            self, "Sweeper", code_dir=FUNCTIONS / "sweeper", service="sweeper",
            description="Put outbound messages left queued back on the outbound queue",
            invoked_by=f"an EventBridge schedule every {resources.SWEEP_EVERY_S // 60} minutes, asynchronously",
            timeout=Duration.seconds(resources.SWEEPER_TIMEOUT_S),
            environment={
                **stage_env,
                **table_env(resources.MESSAGES),
                resources.OUTBOUND_QUEUE_ENV: self.outbound.queue.queue_url,
            },
            dead_letter_queue=dead_letters,
            **common,
        )
        # It queries the unsent index and moves a message's place in it, and nothing else: not the
        # whole read/write set (no Scan, no Delete) that grant_tables would give.
        messages = tables[resources.MESSAGES.env_var]
        messages.grant(sweeper.function, "dynamodb:Query", "dynamodb:UpdateItem")
        common["key"].grant(sweeper.function, "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*")
        sweeper.acknowledge_wildcard(
            f"Resource::arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/{config.table_name(resources.MESSAGES.logical_id)}/index/*",
            "Query on the Messages table's own secondary indexes (the sweeper's is `unsent`), which IAM addresses as index/*.",
        )
        self.outbound.queue.grant_send_messages(sweeper.function)
        dead_letters.grant_send_messages(sweeper.function)
        sweeper.acknowledge_data_key_families()
        alarms.on_any_dead_letter(
            self, "SweeperDeadLettersAlarm", queue=dead_letters, alarm_topic=alarm_topic,
            description="A scheduled sweep of messages left queued failed three times (Lambda's two async retries included).",
        )
        self.sweeper_alarm = alarms.on_any_count(
            self, "SweeperRequeuedAlarm",
            metric=sweeper.count_metric("SweeperRequeued"),
            alarm_topic=alarm_topic,
            description="Messages stored for sending were left behind (not on the outbound queue for "
            f"{resources.STUCK_AFTER_S // 60} minutes) and were queued again: the API could not enqueue "
            "them (503 not_queued) and the caller did not retry, or the queue lost them. They are being "
            "sent now; look for SQS errors around that time.",
        )
        self.sweep_schedule = events.Rule(
            self, "SweeperSchedule",
            description="Put outbound messages left queued back on the outbound queue",
            schedule=events.Schedule.rate(Duration.seconds(resources.SWEEP_EVERY_S)),
            targets=[
                targets.LambdaFunction(
                    sweeper.function,
                    retry_attempts=2,
                    max_event_age=Duration.seconds(resources.SWEEP_EVERY_S),  # the next sweep is due by then
                )
            ],
        )
        return sweeper

    def _grant_social_messaging(self, config: CoexistConfig) -> None:
        """Only the End User Messaging Social numbers configured in cdk.json, and nothing without one."""
        resource_names = [n.social_messaging_resource() for n in config.phone_numbers if n.social_messaging_resource()]
        if not resource_names:
            return
        arns = [
            name if name.startswith("arn:")
            else f"arn:{Aws.PARTITION}:social-messaging:{Aws.REGION}:{Aws.ACCOUNT_ID}:{name}"
            for name in resource_names
        ]
        self.sender.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["social-messaging:SendWhatsAppMessage"], resources=sorted(set(arns)))
        )
