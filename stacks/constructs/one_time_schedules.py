"""One group of EventBridge Scheduler one-time schedules that invoke one function: the group, the role
Scheduler invokes the function with (that function and the group's dead-letter queue, nothing else),
the dead-letter queue with its alarm, and what a function that makes such schedules is told and may do.

The functions that make the schedules may deploy before the stack that holds the group (the agent API
makes reminders' schedules, ingest moves the bot phases' idle timers), so every name is fixed and
known in advance (`OneTimeScheduling.environment`), and `allow` grants exactly the schedule calls made.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs import alarms, nag
from stacks.constructs.service_function import ServiceFunction


def arn(service: str, resource: str, region: str = Aws.REGION) -> str:
    return f"arn:{Aws.PARTITION}:{service}:{region}:{Aws.ACCOUNT_ID}:{resource}"


@dataclass(frozen=True)
class OneTimeScheduling:
    """The fixed names of one group's schedules, and the env vars (as coexist.settings reads them)
    that tell a function what to put in a schedule it makes."""

    group: str
    function_name: str  # the function every schedule of the group invokes
    role_name: str  # Scheduler's role for the group
    dlq_name: str
    group_env: str
    target_env: str
    role_env: str
    dlq_env: str

    @property
    def role_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/{self.role_name}"

    def environment(self) -> dict[str, str]:
        return {
            self.group_env: self.group,
            self.target_env: arn("lambda", f"function:{self.function_name}"),
            self.role_env: self.role_arn,
            self.dlq_env: arn("sqs", self.dlq_name),
        }

    def allow(self, function: ServiceFunction, actions: tuple[str, ...], why: str) -> None:
        """Make (`actions`, of scheduler:) schedules of this group alone, and hand Scheduler its role."""
        for name, value in self.environment().items():
            function.function.add_environment(name, value)
        function.role.add_to_principal_policy(iam.PolicyStatement(
            actions=[f"scheduler:{action}" for action in actions], resources=[arn("scheduler", f"schedule/{self.group}/*")]))
        if {"CreateSchedule", "UpdateSchedule"} & set(actions):  # a schedule made or changed names its role
            function.role.add_to_principal_policy(iam.PolicyStatement(
                actions=["iam:PassRole"], resources=[self.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}))
        function.acknowledge_wildcard(
            f"Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/{self.group}/*", why)


@dataclass
class ScheduleGroup:
    group: scheduler.CfnScheduleGroup
    dead_letters: sqs.Queue
    scheduler_role: iam.Role


def schedule_group(scope: Construct, *, names: OneTimeScheduling, function_arn: str, key: kms.IKey, alarm_topic: sns.ITopic,
                   role_description: str, lost_description: str, parked_because: str) -> ScheduleGroup:
    """The group, its dead-letter queue (with an alarm on its first message) and Scheduler's role, made
    in `scope` (as `Group`, `DeadLetters`, `DeadLettersAlarm`, `SchedulerRole`)."""
    group = scheduler.CfnScheduleGroup(scope, "Group", name=names.group)
    dead_letters = sqs.Queue(
        scope, "DeadLetters", queue_name=names.dlq_name, encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key, enforce_ssl=True, retention_period=Duration.days(14),
    )
    nag.acknowledge(dead_letters, "AwsSolutions-SQS3",
                    f"This queue is the dead-letter queue of {parked_because}; a DLQ of its own would only move them once more.")
    alarms.on_any_dead_letter(scope, "DeadLettersAlarm", queue=dead_letters, alarm_topic=alarm_topic, description=lost_description)
    role = iam.Role(
        scope, "SchedulerRole", role_name=names.role_name, description=role_description,
        assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {"aws:SourceArn": arn("scheduler", f"schedule/{names.group}/*")},
        }),
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function_arn]))
    dead_letters.grant_send_messages(role)
    policy = role.node.find_child("DefaultPolicy")
    nag.acknowledge(policy, "HIPAA.Security-IAMNoInlinePolicy",
                    "The scheduler role's own policy: invoke the one function and send to its DLQ; it belongs to this "
                    "role alone and is deleted with it.")
    for family in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
        nag.acknowledge(policy, f"AwsSolutions-IAM5[Action::{family}]",
                        "Data-key actions for sending to the CMK-encrypted DLQ, on the one Coexist CMK only.")
    return ScheduleGroup(group, dead_letters, role)
