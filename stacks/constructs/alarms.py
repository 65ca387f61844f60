"""Alarms that page the operator through the alarm topic."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def on_any_dead_letter(scope: Construct, id: str, *, queue: sqs.IQueue, alarm_topic: sns.ITopic, description: str) -> cloudwatch.Alarm:
    """As soon as one message is parked in `queue`: nothing is lost silently."""
    alarm = cloudwatch.Alarm(
        scope,
        id,
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"),
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
    return alarm


def on_any_count(
    scope: Construct, id: str, *, metric: cloudwatch.IMetric, alarm_topic: sns.ITopic, description: str
) -> cloudwatch.Alarm:
    """When a counted event happens at least once in the metric's period."""
    alarm = cloudwatch.Alarm(
        scope,
        id,
        alarm_description=description,
        metric=metric,
        threshold=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,  # EMF emits nothing when nothing happened
    )
    alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))
    return alarm
