"""The retention sweeper deployed: a function run once a day by an EventBridge rule, giving the
messages of chats closed and quiet for longer than the retention their `expires_at` (the Messages
table's TTL then removes them) and applying the last two days' erasures again, with a dead-letter
queue and an alarm when a day's run keeps failing.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import alarms
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS

# Chats and messages: find the chats due, read them, stamp their messages; privacy: legal holds and
# the erasure list, whose last two days are applied again (chats, messages and contacts deleted).
READ_WRITE = (resources.CHATS, resources.MESSAGES, resources.CONTACTS)
READ = (resources.PRIVACY,)


class RetentionSweeper(Construct):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey, tables: dict, layer,
                 alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key, enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.function = ServiceFunction(
            self, "Function", code_dir=FUNCTIONS / "retention", service="retention",
            description="Give the messages of chats closed longer than the retention their expiry (DynamoDB TTL); replay erasures",
            invoked_by="a daily EventBridge schedule, asynchronously",
            timeout=Duration.seconds(resources.RETENTION_TIMEOUT_S),
            environment={
                "COEXIST_STAGE": config.stage,
                **{spec.env_var: tables[spec.env_var].table_name for spec in (*READ_WRITE, *READ)},
            },
            dead_letter_queue=self.dead_letters,
            layer=layer, key=key, log_retention_days=config.log_retention_days,
        )
        self.function.grant_tables(tables, config, read_write=READ_WRITE, read=READ)  # also tells it the retention
        self.dead_letters.grant_send_messages(self.function.function)
        alarms.on_any_dead_letter(
            self, "DeadLettersAlarm", queue=self.dead_letters, alarm_topic=alarm_topic,
            description="The daily retention sweep failed three times: closed chats past their retention keep "
            "their messages until a run succeeds (docs/OPERATIONS.md, Retention).",
        )
        self.schedule = events.Rule(
            self, "Schedule",
            description="Daily: messages of chats closed longer than the retention get their expiry",
            schedule=events.Schedule.rate(Duration.seconds(resources.RETENTION_EVERY_S)),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=2, max_event_age=Duration.hours(6))],
        )
