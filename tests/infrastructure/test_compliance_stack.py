"""The audit trail as deployed: an append-only table whose stream a small function copies into an
S3 bucket under Object Lock (compliance mode, KMS, versioned); no function may change an entry."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match, Template

from coexist import resources
from tests.infrastructure.conftest import import_of, statements_of_role

pytestmark = pytest.mark.infra

EDITS = {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:PartiQLUpdate",
         "dynamodb:PartiQLDelete", "dynamodb:*"}


@pytest.fixture(scope="module")
def compliance(synthesised):
    return Template.from_stack(synthesised.stacks.compliance)


def audit_table_id(synthesised) -> str:
    return synthesised.logical_id(synthesised.stacks.data.tables.by_env_var[resources.AUDIT.env_var])


def test_the_audit_table_streams_every_new_entry(synthesised):
    table = synthesised.data.to_json()["Resources"][audit_table_id(synthesised)]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert table["SSESpecification"]["SSEEnabled"] is True and table["PointInTimeRecoverySpecification"]


def test_the_audit_bucket_is_locked_in_compliance_mode_encrypted_and_versioned(synthesised, compliance, cmk):
    bucket = synthesised.stacks.compliance.audit.bucket
    props = compliance.to_json()["Resources"][synthesised.logical_id(bucket)]["Properties"]
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": synthesised.stacks.config.audit_retention_days}},
    }
    assert synthesised.stacks.config.audit_retention_days >= 6 * 365  # HIPAA keeps documentation six years
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": cmk}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert "LoggingConfiguration" in props


def test_a_function_follows_the_stream_with_retries_and_an_on_failure_queue(synthesised, compliance):
    audit = synthesised.stacks.compliance.audit
    compliance.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": synthesised.logical_id(audit.function.function)},
        "EventSourceArn": import_of(synthesised, synthesised.stacks.data.tables.by_env_var[resources.AUDIT.env_var], "StreamArn"),
        "StartingPosition": "TRIM_HORIZON",
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": Match.any_value(),
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [synthesised.logical_id(audit.dead_letters), "Arn"]}}},
    })
    compliance.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [synthesised.logical_id(audit.dead_letters), "QueueName"]}}],
    })
    env = compliance.to_json()["Resources"][synthesised.logical_id(audit.function.function)]["Properties"]["Environment"]["Variables"]
    assert env[resources.AUDIT_BUCKET_ENV] == {"Ref": synthesised.logical_id(audit.bucket)}


def test_the_stream_function_only_adds_objects_under_audit(synthesised, compliance):
    audit = synthesised.stacks.compliance.audit
    statements = statements_of_role(compliance, synthesised.logical_id(audit.function.role))
    s3_actions = {a for s in statements for a in s["Action"] if a.startswith("s3:")}
    assert "s3:PutObject" in s3_actions
    assert not {a for a in s3_actions if "Delete" in a or "Retention" in a or "LegalHold" in a or a == "s3:*"}
    [put] = [s for s in statements if "s3:PutObject" in s["Action"]]
    put_resources = put["Resource"] if isinstance(put["Resource"], list) else [put["Resource"]]
    assert put_resources and all(json.dumps(r).endswith(f'/{resources.AUDIT_PREFIX}*"]]}}') for r in put_resources), put_resources
    assert not {a for s in statements for a in s["Action"] if a.startswith("dynamodb:") and a not in {
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}}


def _edits_on_the_audit_table(template, role_id: str, table_name: str) -> set[str]:
    found = set()
    for statement in statements_of_role(template, role_id):
        rendered = json.dumps(statement["Resource"])
        if re.search(rf":table/{re.escape(table_name)}\b", rendered) or rendered == '"*"':
            found |= set(statement["Action"]) & (EDITS | {"dynamodb:PutItem"})
    return found


def test_no_function_role_can_change_or_remove_an_audit_entry(synthesised):
    """The agent API appends (PutItem); no role of any stack may update or delete an entry."""
    from stacks.constructs.service_function import ServiceFunction

    table_name = synthesised.stacks.config.table_name(resources.AUDIT.logical_id)
    api_role = synthesised.logical_id(synthesised.stacks.ingress.agent_api.role)
    assert _edits_on_the_audit_table(synthesised.ingress, api_role, table_name) == {"dynamodb:PutItem"}
    checked = 0
    for stack in synthesised.stacks.all:
        template = Template.from_stack(stack)
        for function in (c for c in stack.node.find_all() if isinstance(c, ServiceFunction)):
            edits = _edits_on_the_audit_table(template, synthesised.logical_id(function.role), table_name)
            assert not edits & EDITS, (function.service_name, edits)
            checked += 1
    assert checked >= 9


def test_exports_are_private_encrypted_and_short_lived(synthesised, compliance, cmk):
    exports = synthesised.stacks.compliance.exports
    props = compliance.to_json()["Resources"][synthesised.logical_id(exports.bucket)]["Properties"]
    [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": cmk}
    assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    assert {r.get("ExpirationInDays") for r in props["LifecycleConfiguration"]["Rules"]} == {resources.EXPORTS_KEPT_DAYS}
    compliance.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": synthesised.logical_id(exports.function.function)},
        "EventSourceArn": {"Fn::GetAtt": [synthesised.logical_id(exports.queue), "Arn"]},
        "BatchSize": 1,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    })
    queue = compliance.to_json()["Resources"][synthesised.logical_id(exports.queue)]["Properties"]
    assert queue["QueueName"] == synthesised.stacks.config.exports_queue_name
    assert queue["RedrivePolicy"]["maxReceiveCount"] == resources.EXPORTS_MAX_RECEIVES
    statements = statements_of_role(compliance, synthesised.logical_id(exports.function.role))
    assert {a for s in statements for a in s["Action"] if a.startswith("s3:")} == {"s3:PutObject"}


def test_the_agent_api_is_told_where_exports_go_and_how_long_the_archive_keeps_bodies(synthesised):
    api = synthesised.stacks.ingress.agent_api.function
    env = synthesised.ingress.to_json()["Resources"][synthesised.logical_id(api)]["Properties"]["Environment"]["Variables"]
    config = synthesised.stacks.config
    assert json.dumps(env[resources.EXPORTS_QUEUE_ENV]).endswith(f'/{config.exports_queue_name}"]]}}')
    assert config.exports_bucket_name("", "").rstrip("-") in json.dumps(env[resources.EXPORTS_BUCKET_ENV])
    assert env[resources.ARCHIVE_RETENTION_ENV] == str(config.archive_retention_days)
