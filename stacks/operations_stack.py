"""Watching over the numbers: the 14-day rule of the Business App, and Meta taking a number out of
Coexistence (docs/OPERATIONS.md says what to do about each).

- A daily schedule runs the watchdog function: every coexistence number whose Business App has
  shown no sign of use for 10, 12 and 13 days is reported once per quiet spell to the operations
  topic (subscribe the people who hold the phones), and flagged on the number (the agent API shows it).
- Ingest counts account events that disconnect a number (`NumberDisconnected`); an alarm on that
  count pages through the alarm topic.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import alarms, crm_events
from stacks.constructs.domain_tables import DomainTables
from stacks.constructs.operations_dashboard import OperationsDashboard
from stacks.constructs.retention_sweeper import RetentionSweeper
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS, shared_layer
from stacks.data_stack import DataStack
from stacks.ingress_stack import IngressStack

WATCH_EVERY = Duration.seconds(resources.APP_WATCH_EVERY_S)


class OperationsStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, data: DataStack, ingress: IngressStack, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        key = data.key
        self.add_stack_dependency(data)
        self.add_stack_dependency(ingress)
        tables = DomainTables.referenced_by_name(self, config=config, key=key)
        alarm_topic = ingress.alarms
        self.layer = shared_layer(self)
        self.topic = sns.Topic(
            self, "Operations", display_name=f"Coexist {config.stage} operations", master_key=key, enforce_ssl=True,
        )
        dead_letters = sqs.Queue(
            self, "WatchdogDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.watchdog = ServiceFunction(
            self, "Watchdog", code_dir=FUNCTIONS / "watchdog", service="watchdog",
            description="Warn operators of coexistence numbers whose Business App has been unused for 10-13 days",
            invoked_by="a daily EventBridge schedule, asynchronously",
            timeout=Duration.seconds(resources.WATCHDOG_TIMEOUT_S),
            environment={
                "COEXIST_STAGE": config.stage,
                **{spec.env_var: tables[spec.env_var].table_name for spec in (resources.NUMBERS, resources.ACCOUNTS)},
                resources.OPERATIONS_TOPIC_ENV: self.topic.topic_arn,
            },
            dead_letter_queue=dead_letters,
            layer=self.layer, key=key, log_retention_days=config.log_retention_days,
        )
        # Numbers: read every one, note the warning given; accounts: their connection state.
        self.watchdog.grant_tables(tables, config, read_write=(resources.NUMBERS,), read=(resources.ACCOUNTS,))
        self.topic.grant_publish(self.watchdog.function)
        dead_letters.grant_send_messages(self.watchdog.function)
        self.watchdog.acknowledge_data_key_families()
        alarms.on_any_dead_letter(
            self, "WatchdogDeadLettersAlarm", queue=dead_letters, alarm_topic=alarm_topic,
            description="The daily app-inactivity watch failed three times: numbers at risk of the 14-day "
            "rule were not checked today.",
        )
        self.schedule = events.Rule(
            self, "WatchdogSchedule",
            description="Daily check of the Business App's last use on every coexistence number",
            schedule=events.Schedule.rate(WATCH_EVERY),
            targets=[targets.LambdaFunction(self.watchdog.function, retry_attempts=2, max_event_age=Duration.hours(6))],
        )
        self.disconnected_alarm = alarms.on_any_count(
            self, "NumberDisconnectedAlarm",
            metric=ingress.ingest.count_metric("NumberDisconnected"),
            alarm_topic=alarm_topic,
            description="Meta took a number out of Coexistence (PARTNER_REMOVED, e.g. PRIMARY_INACTIVITY: the "
            "Business App was unused for about 14 days). Reconnect it through Embedded Signup; until then "
            "the API cannot send from it.",
        )
        self.crm_events_failed_alarm = alarms.on_any_count(
            self, "CrmEventsFailedAlarm", metric=crm_events.failed_publishes(), alarm_topic=alarm_topic,
            description="Domain events were given up after their retries (EventBridge refused them or was "
            "unreachable): the CRM missed them. Customers' messages were not affected. The functions' logs name "
            "each event's type and id; check EventBridge's PutEvents errors and quotas.",
        )
        self.crm_dead_letters_alarm = None
        if data.crm_events.to_crm is not None:
            self.crm_dead_letters_alarm = alarms.on_any_dead_letter(
                self, "CrmDeadLettersAlarm", queue=data.crm_events.dead_letters, alarm_topic=alarm_topic,
                description="The CRM's webhook refused events for 24 hours (or answered errors 10 times): they are "
                "parked in the CRM dead-letter queue. Fix the CRM side or its token, then send them again from the queue.",
            )
        self.retention = RetentionSweeper(self, "Retention", config=config, key=key, tables=tables, layer=self.layer,
                                          alarm_topic=alarm_topic)
        self.dashboard = OperationsDashboard(
            self, "Dashboard", config=config, webhook_function=ingress.webhook.function,
            inbound_queue=ingress.inbound.queue, inbound_dead_letters=ingress.inbound.dead_letters,
            other_dead_letters={"raw archive": ingress.raw_archive_queue.dead_letters, "watchdog": dead_letters},
            alarm_topic=alarm_topic,
        )
