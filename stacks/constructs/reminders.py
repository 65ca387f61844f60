"""Reminders deployed: the reminders function, EventBridge Scheduler's group, the role Scheduler
invokes the function with (that function and its dead-letter queue, nothing else), and the DLQ.

The agent API creates and deletes the one-time schedules (layers/coexist/reminders/schedules.py);
it is deployed before this stack, so everything here has a fixed name it is told in advance
(`scheduling_environment`), and `allow_scheduling` gives it exactly the schedule calls it makes.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs.one_time_schedules import OneTimeScheduling, schedule_group
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS


def scheduling(config: CoexistConfig) -> OneTimeScheduling:
    return OneTimeScheduling(
        group=config.reminder_schedule_group, function_name=config.reminders_function_name,
        role_name=config.reminder_scheduler_role_name, dlq_name=config.reminders_dlq_name,
        group_env=resources.REMINDER_SCHEDULE_GROUP_ENV, target_env=resources.REMINDER_TARGET_ARN_ENV,
        role_env=resources.REMINDER_SCHEDULER_ROLE_ARN_ENV, dlq_env=resources.REMINDER_DLQ_ARN_ENV,
    )


def scheduling_environment(config: CoexistConfig) -> dict[str, str]:
    """What the agent API needs to create a reminder's schedule (names as in coexist.settings)."""
    return scheduling(config).environment()


def allow_scheduling(function: ServiceFunction, config: CoexistConfig) -> None:
    """Create and delete schedules of the reminders' group, and hand Scheduler its role: nothing more."""
    scheduling(config).allow(function, ("CreateSchedule", "DeleteSchedule"),
                             "One schedule per reminder, named by the reminder's id at run time, in the reminders' own group only.")


class Reminders(Construct):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey, tables: dict, layer,
                 outbound_queue: sqs.IQueue, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        table_env = {spec.env_var: tables[spec.env_var].table_name for spec in (
            resources.REMINDERS, resources.MESSAGES, resources.CHATS, resources.NUMBERS, resources.ACCOUNTS,
            resources.CONTACTS, resources.TEMPLATES)}
        self.function = ServiceFunction(
            self, "Function", code_dir=FUNCTIONS / "reminders", service="reminders",
            description="Send a reminder when its one-time schedule fires, through the outbound path",
            invoked_by="EventBridge Scheduler's one-time schedules, asynchronously, with retries and a DLQ",
            timeout=Duration.seconds(resources.REMINDERS_TIMEOUT_S),
            environment={"COEXIST_STAGE": config.stage, **table_env, resources.OUTBOUND_QUEUE_ENV: outbound_queue.queue_url},
            layer=layer, key=key, log_retention_days=config.log_retention_days,
        )
        self.function.function.node.default_child.add_property_override("FunctionName", config.reminders_function_name)
        # The outbox: the reminder's message stored `queued` (messages, chats) after the policy's reads.
        self.function.grant_tables(
            tables, config, read_write=(resources.REMINDERS, resources.MESSAGES, resources.CHATS),
            read=(resources.NUMBERS, resources.ACCOUNTS, resources.CONTACTS, resources.TEMPLATES),
        )
        outbound_queue.grant_send_messages(self.function.function)

        made = schedule_group(
            self, names=scheduling(config), function_arn=self.function.function.function_arn, key=key,
            alarm_topic=alarm_topic,
            role_description="EventBridge Scheduler's role for reminders: invoke the reminders function, park failures",
            lost_description="A reminder's schedule could not invoke the reminders function (after Scheduler's retries): "
            "the reminder was not sent. The message holds its id; send it again or tell the customer.",
            parked_because="the reminders' schedules (an invocation Scheduler gave up on)",
        )
        self.group, self.dead_letters, self.scheduler_role = made.group, made.dead_letters, made.scheduler_role
