"""Data stack: one CMK for everything, tables exactly as resources.py declares them, a WORM archive."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Capture, Match
from coexist import resources

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def key_arn(synthesised) -> dict:
    return {"Fn::GetAtt": [synthesised.logical_id(synthesised.stacks.data.key), "Arn"]}


@pytest.fixture(scope="module")
def tables_by_name(synthesised) -> dict[str, dict]:
    tables = synthesised.data.find_resources("AWS::DynamoDB::Table")
    return {t["Properties"]["TableName"]: t for t in tables.values()}


def test_the_key_is_customer_managed_with_rotation(synthesised):
    synthesised.data.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


@pytest.mark.parametrize("spec", resources.TABLES, ids=lambda s: s.logical_id)
def test_table_matches_its_spec(synthesised, tables_by_name, key_arn, spec):
    config = synthesised.stacks.config
    props = tables_by_name[config.table_name(spec.logical_id)]["Properties"]
    assert props["KeySchema"] == spec.key_schema()
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(spec.attribute_definitions(), key=str)
    expected_indexes = spec.create_table_kwargs("x").get("GlobalSecondaryIndexes", [])
    assert [
        {k: v for k, v in index.items() if k in ("IndexName", "KeySchema", "Projection")}
        for index in props.get("GlobalSecondaryIndexes", [])
    ] == expected_indexes
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn}
    assert props["DeletionProtectionEnabled"] is config.deletion_protection
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props


def test_throttle_items_expire_by_themselves(tables_by_name, synthesised):
    throttle = tables_by_name[synthesised.stacks.config.table_name(resources.THROTTLE.logical_id)]["Properties"]
    assert throttle["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert throttle["KeySchema"] == [{"AttributeName": "bucket_id", "KeyType": "HASH"}]


def test_every_table_is_retained_and_in_the_backup_plan(synthesised):
    tables = synthesised.data.find_resources("AWS::DynamoDB::Table")
    assert len(tables) == len(resources.TABLES)
    assert all(t["DeletionPolicy"] == "Retain" for t in tables.values())
    selection = synthesised.data.find_resources("AWS::Backup::BackupSelection")
    (only,) = selection.values()
    covered = only["Properties"]["BackupSelection"]["Resources"]
    for logical_id in tables:
        assert any(logical_id in str(arn) for arn in covered), logical_id
    synthesised.data.has_resource_properties(
        "AWS::Backup::BackupVault", {"EncryptionKeyArn": {"Fn::GetAtt": [synthesised.logical_id(synthesised.stacks.data.key), "Arn"]}}
    )


def test_archive_is_object_locked_versioned_and_encrypted_with_the_cmk(synthesised, key_arn):
    config = synthesised.stacks.config
    log_bucket = Capture()
    synthesised.data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "ObjectLockEnabled": True,
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": config.archive_lock_mode, "Days": config.archive_retention_days}},
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}, "BucketKeyEnabled": True}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": {"DestinationBucketName": {"Ref": log_bucket}, "LogFilePrefix": "archive/"},
            "LifecycleConfiguration": {"Rules": Match.array_with([Match.object_like({"Status": "Enabled", "Transitions": Match.any_value()})])},
        },
    )
    assert log_bucket.as_string() == synthesised.logical_id(synthesised.stacks.data.archive.access_logs)
    assert log_bucket.as_string() != synthesised.logical_id(synthesised.stacks.data.archive.bucket)


@pytest.mark.parametrize("bucket", ["bucket", "access_logs"])
def test_buckets_refuse_plain_http(synthesised, bucket):
    bucket_id = synthesised.logical_id(getattr(synthesised.stacks.data.archive, bucket))
    synthesised.data.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with([
                    Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
                ])
            },
        },
    )


def test_secrets_are_encrypted_with_the_cmk_and_hold_generated_placeholders(synthesised, key_arn):
    secrets = synthesised.data.find_resources("AWS::SecretsManager::Secret")
    assert len(secrets) == 3
    for secret in secrets.values():
        assert secret["Properties"]["KmsKeyId"] == key_arn
        assert "SecretString" not in secret["Properties"]  # never a literal value in the template
        assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
