"""Campaigns: the queue of pages due and the function that runs them (coexist.campaigns).

A standard queue (each message a page, delayed until it is due; a page run twice counts once)
with a dead-letter queue and its alarm, and the campaigns function reading it one page at a time.
The agent API puts a campaign's first page on it and refers to it by name (`referenced_by_name`),
like the outbound queue, so the stacks export nothing to each other.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs.alarms import on_any_dead_letter
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS


class CampaignDriver(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, tables: dict[str, dynamodb.ITable], key: kms.IKey,
        outbound_queue: sqs.IQueue, alarm_topic: sns.ITopic, common: dict, environment: dict[str, str],
    ) -> None:
        super().__init__(scope, id)
        encrypted = dict(encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True)
        self.dead_letters = sqs.Queue(self, "DeadLetters", retention_period=Duration.days(14), **encrypted)
        self.queue = sqs.Queue(
            self, "Queue", queue_name=config.campaigns_queue_name,
            visibility_timeout=Duration.seconds(resources.CAMPAIGNS_VISIBILITY_TIMEOUT_S),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=resources.CAMPAIGNS_MAX_RECEIVES),
            **encrypted,
        )
        on_any_dead_letter(
            self, "DeadLettersAlarm", queue=self.dead_letters, alarm_topic=alarm_topic,
            description="A campaign page failed five times and was parked: the campaign stops at that page. "
            "The function's log names the campaign, the page and the error's type; redrive the message to go on.",
        )
        table_env = {spec.env_var: tables[spec.env_var].table_name for spec in (
            resources.CAMPAIGNS, resources.MESSAGES, resources.CHATS, resources.CUSTOMERS, resources.CONTACTS,
            resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES,
        )}
        self.function = ServiceFunction(
            self, "Function", code_dir=FUNCTIONS / "campaigns", service="campaigns",
            description="Run campaign pages: policy per recipient, messages queued for the sender, paced to the number",
            invoked_by="the campaigns queue's event source mapping",
            timeout=Duration.seconds(resources.CAMPAIGNS_TIMEOUT_S),
            environment={
                **environment, **table_env,
                resources.CAMPAIGNS_QUEUE_ENV: self.queue.queue_url,
                resources.OUTBOUND_QUEUE_ENV: outbound_queue.queue_url,
            },
            **common,
        )
        self.function.grant_tables(
            tables, config,
            # campaigns: pages, counters, the reply link, the limit ledger; messages: the queued
            # sends; chats and customers: a recipient never seen before gets its customer and chat.
            read_write=(resources.CAMPAIGNS, resources.MESSAGES, resources.CHATS, resources.CUSTOMERS),
            read=(resources.CONTACTS, resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES),
        )
        self.function.function.add_event_source(
            event_sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True)
        )
        self.queue.grant_send_messages(self.function.function)  # the next page, delayed
        outbound_queue.grant_send_messages(self.function.function)
        self.function.acknowledge_data_key_families()

    @staticmethod
    def referenced_by_name(scope: Construct, id: str, *, queue_name: str, key: kms.IKey) -> sqs.IQueue:
        """The queue as the agent API's stack (deployed before it) sees it: by its fixed name."""
        return sqs.Queue.from_queue_attributes(
            scope, id,
            queue_arn=Stack.of(scope).format_arn(service="sqs", resource=queue_name),
            queue_url=f"https://sqs.{Aws.REGION}.{Aws.URL_SUFFIX}/{Aws.ACCOUNT_ID}/{queue_name}",
            key_arn=key.key_arn,
        )
