"""Reminders deployed: the reminders function, EventBridge Scheduler's group, the role Scheduler
invokes the function with (that function and its dead-letter queue, nothing else), and the DLQ.

The agent API creates and deletes the one-time schedules (layers/coexist/reminders/schedules.py);
it is deployed before this stack, so everything here has a fixed name it is told in advance
(`scheduling_environment`), and `allow_scheduling` gives it exactly the schedule calls it makes.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import alarms, nag
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS


def _arn(service: str, resource: str, region: str = Aws.REGION) -> str:
    return f"arn:{Aws.PARTITION}:{service}:{region}:{Aws.ACCOUNT_ID}:{resource}"


def scheduling_environment(config: CoexistConfig) -> dict[str, str]:
    """What the agent API needs to create a reminder's schedule (names as in coexist.settings)."""
    return {
        resources.REMINDER_SCHEDULE_GROUP_ENV: config.reminder_schedule_group,
        resources.REMINDER_TARGET_ARN_ENV: _arn("lambda", f"function:{config.reminders_function_name}"),
        resources.REMINDER_SCHEDULER_ROLE_ARN_ENV: f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{config.reminder_scheduler_role_name}",
        resources.REMINDER_DLQ_ARN_ENV: _arn("sqs", config.reminders_dlq_name),
    }


def allow_scheduling(function: ServiceFunction, config: CoexistConfig) -> None:
    """Create and delete schedules of the reminders' group, and hand Scheduler its role: nothing more."""
    for name, value in scheduling_environment(config).items():
        function.function.add_environment(name, value)
    schedules = _arn("scheduler", f"schedule/{config.reminder_schedule_group}/*")
    function.role.add_to_principal_policy(iam.PolicyStatement(
        actions=["scheduler:CreateSchedule", "scheduler:DeleteSchedule"], resources=[schedules]))
    function.role.add_to_principal_policy(iam.PolicyStatement(
        actions=["iam:PassRole"], resources=[scheduling_environment(config)[resources.REMINDER_SCHEDULER_ROLE_ARN_ENV]],
        conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}))
    function.acknowledge_wildcard(
        "Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/"
        f"{config.reminder_schedule_group}/*",
        "One schedule per reminder, named by the reminder's id at run time, in the reminders' own group only.",
    )


class Reminders(Construct):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey, tables: dict, layer,
                 outbound_queue: sqs.IQueue, alarm_topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        self.group = scheduler.CfnScheduleGroup(self, "Group", name=config.reminder_schedule_group)
        self.dead_letters = sqs.Queue(
            self, "DeadLetters", queue_name=config.reminders_dlq_name, encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key, enforce_ssl=True, retention_period=Duration.days(14),
        )
        nag.acknowledge(self.dead_letters, "AwsSolutions-SQS3",
                        "This queue is the dead-letter queue of the reminders' schedules (an invocation Scheduler "
                        "gave up on); a DLQ of its own would only move them once more.")
        alarms.on_any_dead_letter(
            self, "DeadLettersAlarm", queue=self.dead_letters, alarm_topic=alarm_topic,
            description="A reminder's schedule could not invoke the reminders function (after Scheduler's retries): "
            "the reminder was not sent. The message holds its id; send it again or tell the customer.",
        )
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

        self.scheduler_role = iam.Role(
            self, "SchedulerRole", role_name=config.reminder_scheduler_role_name,
            description="EventBridge Scheduler's role for reminders: invoke the reminders function, park failures",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                "ArnLike": {"aws:SourceArn": _arn("scheduler", f"schedule/{config.reminder_schedule_group}/*")},
            }),
        )
        self.scheduler_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[self.function.function.function_arn]))
        self.dead_letters.grant_send_messages(self.scheduler_role)
        policy = self.scheduler_role.node.find_child("DefaultPolicy")
        nag.acknowledge(policy, "HIPAA.Security-IAMNoInlinePolicy",
                        "The scheduler role's own policy: invoke the one reminders function and send to its DLQ; it "
                        "belongs to this role alone and is deleted with it.")
        for family in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            nag.acknowledge(policy, f"AwsSolutions-IAM5[Action::{family}]",
                            "Data-key actions for sending to the CMK-encrypted DLQ, on the one Coexist CMK only.")
