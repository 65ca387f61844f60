"""The outbound stack's sending guarantees as deployed: the sender's timeout against the worst case of
one send, and the sweeper (its schedule, role, alarms) with the sparse index it reads."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match
from coexist import resources
from coexist.outbound import deadlines

from .conftest import WRITES, statements_of_role

pytestmark = pytest.mark.infra


def _resources(template) -> dict:
    return template.to_json()["Resources"]


def _tables_with(statements: list[dict], action: str) -> set[str]:
    found = set()
    for statement in statements:
        if action in statement["Action"]:
            found |= set(re.findall(r":table/([a-z0-9-]+)", json.dumps(statement["Resource"])))
    return found


@pytest.fixture(scope="module")
def ids(synthesised) -> dict[str, str]:
    s = synthesised.stacks.outbound
    return {
        "queue": synthesised.logical_id(s.outbound.queue),
        "sender": synthesised.logical_id(s.sender.function),
        "sweeper": synthesised.logical_id(s.sweeper.function),
        "sweeper_role": synthesised.logical_id(s.sweeper.role),
        "sweeper_dlq": synthesised.logical_id(s.sweeper.function.dead_letter_queue),
        "schedule": synthesised.logical_id(s.sweep_schedule),
    }


# --- the sender's timeout ----------------------------------------------------------------------


def test_the_senders_timeout_exceeds_the_worst_case_of_one_send_and_the_queue_waits_six_times_longer(synthesised, ids):
    timeout = _resources(synthesised.outbound)[ids["sender"]]["Properties"]["Timeout"]
    # The worst case: both in-process slot waits, one call to Meta at its connect and read timeouts
    # (never retried by the client), and the store's writes around it.
    worst = 2 * deadlines.MAX_INLINE_WAIT_S + deadlines.CONNECT_TIMEOUT_S + deadlines.READ_TIMEOUT_S + deadlines.BOOKKEEPING_S
    assert deadlines.SEND_WORST_CASE_S == worst
    assert timeout == resources.SENDER_TIMEOUT_S and timeout > worst
    visibility = _resources(synthesised.outbound)[ids["queue"]]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * timeout


# --- the sparse index --------------------------------------------------------------------------


def test_the_messages_table_has_the_sparse_unsent_index(synthesised):
    config = synthesised.stacks.config
    synthesised.data.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": config.table_name(resources.MESSAGES.logical_id),
            "AttributeDefinitions": Match.array_with([
                {"AttributeName": "unsent_shard", "AttributeType": "S"},
                {"AttributeName": "unsent_since_ms", "AttributeType": "N"},
            ]),
            "GlobalSecondaryIndexes": Match.array_with([Match.object_like({
                "IndexName": "unsent",
                "KeySchema": [
                    {"AttributeName": "unsent_shard", "KeyType": "HASH"},
                    {"AttributeName": "unsent_since_ms", "KeyType": "RANGE"},
                ],
            })]),
        },
    )


# --- the sweeper -------------------------------------------------------------------------------


def test_the_sweeper_runs_every_five_minutes_with_retries(synthesised, ids):
    synthesised.outbound.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(5 minutes)",
            "State": "ENABLED",
            "Targets": [Match.object_like({
                "Arn": {"Fn::GetAtt": [ids["sweeper"], "Arn"]},
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": resources.SWEEP_EVERY_S},
            })],
        },
    )
    synthesised.outbound.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [ids["sweeper"], "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [ids["schedule"], "Arn"]},
        },
    )


def test_the_sweeper_function(synthesised, ids, cmk):
    config = synthesised.stacks.config
    props = _resources(synthesised.outbound)[ids["sweeper"]]["Properties"]
    assert props["Timeout"] == resources.SWEEPER_TIMEOUT_S
    assert props["Architectures"] == ["arm64"] and props["TracingConfig"] == {"Mode": "Active"}
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [ids["sweeper_dlq"], "Arn"]}}  # invoked asynchronously
    env = props["Environment"]["Variables"]
    assert env[resources.MESSAGES.env_var] == config.table_name(resources.MESSAGES.logical_id)
    assert env[resources.OUTBOUND_QUEUE_ENV] == {"Ref": ids["queue"]}
    assert env["POWERTOOLS_SERVICE_NAME"] == "coexist-sweeper"
    dlq = _resources(synthesised.outbound)[ids["sweeper_dlq"]]["Properties"]
    assert dlq["KmsMasterKeyId"] == cmk


def test_the_sweepers_role_reaches_the_messages_table_and_the_outbound_queue_only(synthesised, ids):
    config = synthesised.stacks.config
    statements = statements_of_role(synthesised.outbound, ids["sweeper_role"])
    messages = {config.table_name(resources.MESSAGES.logical_id)}
    for action in ("dynamodb:Query", "dynamodb:UpdateItem"):
        assert _tables_with(statements, action) == messages, action
    for action in (*WRITES - {"dynamodb:UpdateItem"}, "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:BatchGetItem"):
        assert _tables_with(statements, action) == set(), action
    sending = []
    for statement in statements:
        if "sqs:SendMessage" in statement["Action"]:
            targets = statement["Resource"]
            sending += targets if isinstance(targets, list) else [targets]
    assert sorted(map(json.dumps, sending)) == sorted(map(json.dumps, [
        {"Fn::GetAtt": [ids["queue"], "Arn"]}, {"Fn::GetAtt": [ids["sweeper_dlq"], "Arn"]},
    ]))
    actions = {a for s in statements for a in s["Action"]}
    assert not {a for a in actions if a.startswith(("secretsmanager:", "s3:", "social-messaging:", "states:", "dynamodb:Scan"))}
    assert not {a for a in actions if a.startswith("sqs:") and a not in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")}


def test_requeued_messages_and_failed_sweeps_raise_alarms(synthesised, ids):
    alarm_topic = Match.any_value()
    synthesised.outbound.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": resources.METRICS_NAMESPACE,
            "MetricName": "SweeperRequeued",
            "Dimensions": [{"Name": "service", "Value": "coexist-sweeper"}],
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [alarm_topic],
        },
    )
    synthesised.outbound.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [ids["sweeper_dlq"], "QueueName"]}}],
            "Threshold": 0,
        },
    )
