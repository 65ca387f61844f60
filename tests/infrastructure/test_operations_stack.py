"""The operations stack: the daily app-inactivity watch and the disconnection alarm."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match
from coexist import resources

from .conftest import WRITES, actions_of_role, statements_of_role

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def ids(synthesised) -> dict[str, str]:
    s = synthesised.stacks.operations
    return {
        "function": synthesised.logical_id(s.watchdog.function),
        "role": synthesised.logical_id(s.watchdog.role),
        "topic": synthesised.logical_id(s.topic),
        "schedule": synthesised.logical_id(s.schedule),
    }


def _tables_with(statements: list[dict], actions: set[str]) -> set[str]:
    found = set()
    for statement in statements:
        if actions & set(statement["Action"]):
            found |= set(re.findall(r":table/([a-z0-9-]+)", json.dumps(statement["Resource"])))
    return found


def test_the_watch_runs_daily_with_retries_and_a_dead_letter_queue(synthesised, ids):
    synthesised.operations.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": "rate(1 day)",
        "State": "ENABLED",
        "Targets": [Match.object_like({
            "Arn": {"Fn::GetAtt": [ids["function"], "Arn"]},
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 6 * 3600},
        })],
    })
    props = synthesised.operations.to_json()["Resources"][ids["function"]]["Properties"]
    assert props["Architectures"] == ["arm64"] and "DeadLetterConfig" in props
    assert props["Environment"]["Variables"][resources.OPERATIONS_TOPIC_ENV] == {"Ref": ids["topic"]}


def test_the_watch_may_read_numbers_and_accounts_note_warnings_and_publish_to_its_topic_only(synthesised, ids):
    config = synthesised.stacks.config
    statements = statements_of_role(synthesised.operations, ids["role"])
    numbers, accounts = config.table_name(resources.NUMBERS.logical_id), config.table_name(resources.ACCOUNTS.logical_id)
    assert _tables_with(statements, {"dynamodb:Scan"}) == {numbers, accounts}  # read grants: whole tables, no index
    assert _tables_with(statements, {"dynamodb:UpdateItem"}) == {numbers}
    assert _tables_with(statements, {"dynamodb:GetItem"}) >= {numbers, accounts}
    assert not _tables_with(statements, WRITES) - {numbers}
    publishes = [s for s in statements if "sns:Publish" in s["Action"]]
    assert [s["Resource"] for s in publishes] == [{"Ref": ids["topic"]}]
    services = {a.split(":")[0] for a in actions_of_role(synthesised.operations, ids["role"])}
    assert services <= {"dynamodb", "sns", "sqs", "kms", "xray", "logs"}


def test_the_topic_is_encrypted_and_a_disconnection_pages(synthesised, ids):
    topic = synthesised.operations.to_json()["Resources"][ids["topic"]]["Properties"]
    assert "KmsMasterKeyId" in topic
    synthesised.operations.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "NumberDisconnected",
        "Namespace": resources.METRICS_NAMESPACE,
        "Dimensions": [{"Name": "service", "Value": "coexist-ingest"}],
        "Threshold": 1,
        "AlarmActions": [Match.any_value()],
    })
