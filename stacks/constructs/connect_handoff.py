"""Amazon Connect handoff: a WhatsApp conversation continues as an Amazon Connect chat.

Created only when cdk.json sets `connect: {"instance_id": ..., "contact_flow_id": ...}`. The
conversation function starts a chat contact in the configured flow (StartChatContact) and asks Connect
to stream that contact's events (StartContactStreaming) to the topic built here; the connect events
function turns the agent's messages into outbound WhatsApp messages and wakes the workflow when the
contact ends. Connect's agents work in Connect; Coexist keeps the record and the customer's window.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig, ConnectSettings
from stacks.constructs import alarms
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS

CONNECT_EVENTS_TIMEOUT_S = 30


def contacts_of(stack: Stack, settings: ConnectSettings) -> tuple[str, str]:
    """The configured instance's contacts, which are created at run time: their ARN pattern, and the
    name cdk-nag gives that wildcard."""
    instance_arn = stack.format_arn(service="connect", resource="instance", resource_name=settings.instance_id)
    finding = f"Resource::arn:<AWS::Partition>:connect:<AWS::Region>:<AWS::AccountId>:instance/{settings.instance_id}/contact/*"
    return f"{instance_arn}/contact/*", finding


class ConnectHandoff(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        settings: ConnectSettings,
        config: CoexistConfig,
        tables: dict[str, dynamodb.ITable],
        conversation: ServiceFunction,
        outbound_queue: sqs.IQueue,
        alarm_topic: sns.ITopic,
        layer: lambda_.ILayerVersion,
        key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.instance_arn = stack.format_arn(service="connect", resource="instance", resource_name=settings.instance_id)
        contacts_arn, contacts_finding = contacts_of(stack, settings)
        flow_arn = f"{self.instance_arn}/contact-flow/{settings.contact_flow_id}"
        connect_env = {"CONNECT_INSTANCE_ID": settings.instance_id, "CONNECT_CONTACT_FLOW_ID": settings.contact_flow_id}

        # Where Connect's StartContactStreaming publishes the contact's messages and events.
        self.topic = sns.Topic(
            self, "StreamingEvents", display_name="Coexist: Amazon Connect chat streaming",
            master_key=key, enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ConnectStreamsChatEvents",
                principals=[iam.ServicePrincipal("connect.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                    "ArnLike": {"aws:SourceArn": [self.instance_arn, f"{self.instance_arn}/*"]},  # this instance only
                },
            )
        )

        # SNS invokes the function asynchronously: what still fails after Lambda's retries is parked.
        self.dead_letters = sqs.Queue(
            self, "ConnectEventsDeadLetters",
            encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.events = ServiceFunction(
            self, "ConnectEvents", code_dir=FUNCTIONS / "connect_events", service="connect-events",
            description="Amazon Connect chat streaming: agent messages to WhatsApp, contact end to the workflow",
            invoked_by="the Connect streaming SNS topic, asynchronously",
            timeout=Duration.seconds(CONNECT_EVENTS_TIMEOUT_S),
            environment={
                "COEXIST_STAGE": config.stage,
                **{
                    spec.env_var: tables[spec.env_var].table_name
                    for spec in (resources.CHATS, resources.MESSAGES, resources.CONTACTS, resources.NUMBERS,
                                 resources.ACCOUNTS, resources.TEMPLATES, resources.TASK_TOKENS)
                },
                resources.OUTBOUND_QUEUE_ENV: outbound_queue.queue_url,
                **config.numbers_environment(),
                **connect_env,
            },
            dead_letter_queue=self.dead_letters,
            task_token_actions=("states:SendTaskSuccess",),  # the contact ended: the agent step is done
            layer=layer, key=key, log_retention_days=log_retention_days,
        )
        self.events.grant_tables(
            tables, config,
            # The agent's messages are sent like any agent reply: through the outbox's policy check.
            read_write=(resources.CHATS, resources.MESSAGES, resources.TASK_TOKENS),  # + the contact's wait, parked
            read=(resources.CONTACTS, resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES),
        )
        outbound_queue.grant_send_messages(self.events.function)
        self.dead_letters.grant_send_messages(self.events.function)
        self.topic.add_subscription(subscriptions.LambdaSubscription(self.events.function))
        alarms.on_any_dead_letter(
            self, "ConnectEventsDeadLettersAlarm", queue=self.dead_letters, alarm_topic=alarm_topic,
            description="An Amazon Connect chat event could not be applied after Lambda's retries: an agent's "
            "message may not have reached the customer. The parked event says which contact.",
        )

        # The conversation function hands the chat over and ends it.
        conversation.function.add_environment("CONNECT_STREAMING_TOPIC_ARN", self.topic.topic_arn)
        for name, value in connect_env.items():
            conversation.function.add_environment(name, value)
        conversation.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["connect:StartChatContact"], resources=[flow_arn, contacts_arn])
        )
        # IAM authorizes StartContactStreaming on the instance as well as on the contact.
        conversation.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["connect:StartContactStreaming"], resources=[self.instance_arn, contacts_arn])
        )
        conversation.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["connect:StopContact"], resources=[contacts_arn])
        )
        conversation.acknowledge_wildcard(
            contacts_finding,
            "Contacts of the one configured Connect instance: each handoff creates a new contact whose id "
            "exists only at run time.",
        )
