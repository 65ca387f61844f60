"""Retention deployed: the tables whose records expire have DynamoDB TTL on `expires_at`, the daily
retention sweeper may touch exactly the chats, messages and contacts (and read holds and erasures), each writer is told its
table's retention, and the setting is checked at synth without ever shortening the locked archives."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match
from coexist import resources

from stacks.config import CoexistConfig

from .conftest import WRITES, statements_of_role

pytestmark = pytest.mark.infra

EXPIRING = (resources.MESSAGES, resources.AUDIT, resources.PRIVACY, resources.COSTS)


def _tables(synthesised) -> dict[str, dict]:
    found = synthesised.data.find_resources("AWS::DynamoDB::Table")
    return {t["Properties"]["TableName"]: t["Properties"] for t in found.values()}


@pytest.mark.parametrize("spec", EXPIRING, ids=lambda s: s.logical_id)
def test_each_table_with_a_retention_expires_its_records_by_ttl(synthesised, spec):
    table = _tables(synthesised)[synthesised.stacks.config.table_name(spec.logical_id)]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert spec.retention_days is not None


def test_the_defaults_suit_a_healthcare_deployment():
    assert resources.MESSAGES.retention_days == 6 * 365  # HIPAA's six years, counted from the chat's close
    assert resources.AUDIT.retention_days == 6 * 365
    assert resources.PRIVACY.retention_days == 30 and resources.COSTS.retention_days == 2 * 365


def test_the_chats_retention_index_is_deployed(synthesised):
    chats = _tables(synthesised)[synthesised.stacks.config.table_name(resources.CHATS.logical_id)]
    [index] = [i for i in chats["GlobalSecondaryIndexes"] if i["IndexName"] == "retention"]
    assert index["KeySchema"] == [{"AttributeName": "retention_shard", "KeyType": "HASH"},
                                  {"AttributeName": "retention_from", "KeyType": "RANGE"}]


def _function(template, construct, synthesised) -> dict:
    return template.to_json()["Resources"][synthesised.logical_id(construct.function)]["Properties"]


def test_the_sweeper_runs_daily_and_may_write_only_chats_messages_and_contacts(synthesised):
    sweeper = synthesised.stacks.operations.retention
    operations = synthesised.operations
    function_id = synthesised.logical_id(sweeper.function.function)
    operations.has_resource_properties("AWS::Events::Rule", {
        "ScheduleExpression": "rate(1 day)",
        "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [function_id, "Arn"]},
                                       "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 6 * 3600}})],
    })
    props = operations.to_json()["Resources"][function_id]["Properties"]
    assert props["Architectures"] == ["arm64"] and "DeadLetterConfig" in props
    assert props["Environment"]["Variables"][resources.MESSAGES.retention_env] == str(6 * 365)
    config = synthesised.stacks.config
    statements = statements_of_role(operations, synthesised.logical_id(sweeper.function.role))
    written = set()
    read = set()
    for statement in statements:
        tables = set(re.findall(r":table/([a-z0-9-]+)", json.dumps(statement["Resource"])))
        if WRITES & set(statement["Action"]):
            written |= tables
        if "dynamodb:GetItem" in statement["Action"]:
            read |= tables
    chats, messages, contacts, privacy = (config.table_name(s.logical_id)
                                          for s in (resources.CHATS, resources.MESSAGES, resources.CONTACTS, resources.PRIVACY))
    assert written == {chats, messages, contacts}  # contacts: an erasure replayed (coexist.privacy.ErasureReplay)
    assert read == {chats, messages, contacts, privacy}


def test_the_writers_of_expiring_records_are_told_the_retention(synthesised):
    api = synthesised.stacks.ingress.agent_api
    env = synthesised.ingress.to_json()["Resources"][synthesised.logical_id(api.function)]["Properties"]["Environment"]["Variables"]
    assert env[resources.AUDIT.retention_env] == str(6 * 365)
    assert env[resources.PRIVACY.retention_env] == "30"
    ingest = synthesised.stacks.ingress.ingest
    env = synthesised.ingress.to_json()["Resources"][synthesised.logical_id(ingest.function)]["Properties"]["Environment"]["Variables"]
    assert env[resources.COSTS.retention_env] == str(2 * 365)  # ingest prices what Meta delivers


def _config(retention) -> CoexistConfig:
    return CoexistConfig.from_context(App(context={"coexist": {"retention_days": retention}}).node)


def test_a_configured_retention_reaches_the_environment_and_leaves_the_locked_archive_alone():
    config = _config({"messages": 3650, "audit": 400, "costs": 0})
    assert config.retention_environment(resources.MESSAGES) == {"MESSAGES_RETENTION_DAYS": "3650"}
    assert config.retention_environment(resources.AUDIT) == {"AUDIT_RETENTION_DAYS": "400"}
    assert config.retention_environment(resources.COSTS) == {"COSTS_RETENTION_DAYS": "0"}  # kept until erased
    assert config.retention_environment(resources.PRIVACY) == {"PRIVACY_RETENTION_DAYS": "30"}  # the default
    assert config.retention_environment(resources.CHATS) == {}  # chats carry no retention of their own
    assert config.audit_retention_days == 6 * 365  # the audit archive's Object Lock is its own setting


@pytest.mark.parametrize("retention, problem", [
    ({"chats": 10}, "unknown tables"),
    ({"messages": -1}, "whole days"),
    ({"messages": "10"}, "whole days"),
    ({"messages": True}, "whole days"),
    ({"audit": 36501}, "whole days"),
    ([10], "object of days"),
])
def test_a_wrong_retention_fails_synth(retention, problem):
    with pytest.raises(ValueError, match=problem):
        _config(retention)
