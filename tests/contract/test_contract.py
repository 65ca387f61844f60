"""The IAM evaluator, the template resolver, call derivation and the contract check, on their own."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from tests.contract.calls import bindings_for, queue_arn, required_calls
from tests.contract.contract import check, deployment
from tests.contract.policy import Request, is_allowed, wildcard_match
from tests.contract.template import Templates, Unresolvable

ARCHIVE = "arn:aws:s3:::coexist-prod-archive"


def allow(action, resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


# --- the evaluator ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/raw/ab/cd.json", True),
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/quarantine/ab.json", False),
        ("arn:aws:s3:::b/raw/*", "arn:aws:s3:::b/raw", False),
        ("arn:aws:secretsmanager:r:1:secret:meta/app-??????", "arn:aws:secretsmanager:r:1:secret:meta/app-AbCdEf", True),
        ("arn:aws:secretsmanager:r:1:secret:meta/app-??????", "arn:aws:secretsmanager:r:1:secret:meta/app-AbCdE", False),
        ("arn:aws:dynamodb:r:1:table/t.x", "arn:aws:dynamodb:r:1:table/tzx", False),  # dots are literal
        ("*", "anything at all", True),
    ],
)
def test_wildcards_match_as_iam_matches_them(pattern, value, matches):
    assert wildcard_match(pattern, value) is matches


def test_actions_match_case_insensitively_and_by_family():
    statements = [allow(["s3:GetObject*", "dynamodb:putitem"], "*")]
    assert is_allowed(statements, Request("s3:GetObjectVersion", "x"))
    assert is_allowed(statements, Request("dynamodb:PutItem", "x"))
    assert not is_allowed(statements, Request("s3:PutObject", "x"))


def test_resources_match_case_sensitively():
    assert not is_allowed([allow("s3:PutObject", f"{ARCHIVE}/RAW/*")], Request("s3:PutObject", f"{ARCHIVE}/raw/k"))


def test_nothing_is_allowed_without_an_allow_and_a_deny_wins():
    request = Request("sqs:SendMessage", "arn:aws:sqs:r:1:q")
    assert not is_allowed([], request)
    assert not is_allowed([allow("sqs:*", "*"), {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": "*"}], request)


def test_not_action_and_not_resource():
    statements = [{"Effect": "Allow", "NotAction": "s3:DeleteObject", "NotResource": f"{ARCHIVE}/raw/*"}]
    assert is_allowed(statements, Request("s3:PutObject", f"{ARCHIVE}/unhandled/k"))
    assert not is_allowed(statements, Request("s3:DeleteObject", f"{ARCHIVE}/unhandled/k"))
    assert not is_allowed(statements, Request("s3:PutObject", f"{ARCHIVE}/raw/k"))


def test_a_condition_grants_only_when_the_request_satisfies_it():
    statements = [allow("kms:Decrypt", "arn:aws:kms:r:1:key/k", Condition={"StringEquals": {"kms:ViaService": "sqs.r.amazonaws.com"}})]
    assert is_allowed(statements, Request("kms:Decrypt", "arn:aws:kms:r:1:key/k", {"kms:ViaService": "sqs.r.amazonaws.com"}))
    assert not is_allowed(statements, Request("kms:Decrypt", "arn:aws:kms:r:1:key/k", {"kms:ViaService": "s3.r.amazonaws.com"}))
    assert not is_allowed(statements, Request("kms:Decrypt", "arn:aws:kms:r:1:key/k"))
    unknown = [allow("kms:Decrypt", "*", Condition={"NumericLessThan": {"kms:Whatever": "3"}})]
    assert not is_allowed(unknown, Request("kms:Decrypt", "k", {"kms:Whatever": "1"}))


# --- the template resolver -------------------------------------------------------------------------

TEMPLATES = {
    "Data": {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Chats": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "coexist-prod-chats"}},
        },
        "Outputs": {"KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "Data:KeyArn"}}},
    },
    "Ingress": {
        "Resources": {
            "Inbound": {"Type": "AWS::SQS::Queue", "Properties": {"KmsMasterKeyId": {"Fn::ImportValue": "Data:KeyArn"}}},
            "IngestRole": {"Type": "AWS::IAM::Role", "Properties": {}},
            "IngestPolicy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "IngestRole"}],
                    "PolicyDocument": {"Statement": [
                        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": {"Fn::Join": ["", [
                            "arn:", {"Ref": "AWS::Partition"}, ":s3:::coexist-prod-archive-", {"Ref": "AWS::AccountId"}, "/unhandled/*"]]}},
                        {"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/coexist-prod-chats"}},
                        {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": {"Fn::GetAtt": ["Inbound", "Arn"]}},
                    ]},
                },
            },
            "Ingest": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Role": {"Fn::GetAtt": ["IngestRole", "Arn"]},
                    "Environment": {"Variables": {
                        "CHATS_TABLE": "coexist-prod-chats",
                        "ARCHIVE_BUCKET": {"Fn::Join": ["", ["coexist-prod-archive-", {"Ref": "AWS::AccountId"}]]},
                        "INBOUND_QUEUE_URL": {"Ref": "Inbound"},
                    }},
                },
            },
        }
    },
}


@pytest.fixture
def templates() -> Templates:
    return Templates(json.loads(json.dumps(TEMPLATES)))


def test_intrinsics_resolve_to_concrete_strings(templates):
    assert templates.resolve("Ingress", {"Ref": "Inbound"}) == "https://sqs.us-east-1.amazonaws.com/123456789012/Inbound"
    assert templates.resolve("Ingress", {"Fn::ImportValue": "Data:KeyArn"}) == "arn:aws:kms:us-east-1:123456789012:key/Key"
    assert templates.resolve("Data", {"Fn::GetAtt": ["Chats", "Arn"]}) == "arn:aws:dynamodb:us-east-1:123456789012:table/coexist-prod-chats"
    assert templates.resolve("Ingress", {"Fn::Select": [1, {"Fn::Split": ["/", "a/b/c"]}]}) == "b"
    with pytest.raises(Unresolvable):
        templates.resolve("Ingress", {"Fn::If": ["Cond", "a", "b"]})


# --- call derivation -------------------------------------------------------------------------------


def operation(service: str, name: str, auth_type=None):
    return SimpleNamespace(name=name, auth_type=auth_type, auth=None, service_model=SimpleNamespace(service_name=service))


def test_calls_become_iam_actions_on_arns():
    (query,) = required_calls(operation("dynamodb", "Query"), {"TableName": "t", "IndexName": "by_chat"})
    assert (query["action"], query["resource"]) == ("dynamodb:Query", "arn:aws:dynamodb:us-east-1:123456789012:table/t/index/by_chat")
    transaction = required_calls(operation("dynamodb", "TransactWriteItems"), {"TransactItems": [
        {"Put": {"TableName": "a"}}, {"ConditionCheck": {"TableName": "b"}}]})
    assert [c["action"] for c in transaction] == ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    (put,) = required_calls(operation("s3", "PutObject"), {"Bucket": "b", "Key": "raw/k"})
    assert put["resource"] == "arn:aws:s3:::b/raw/k"
    (start,) = required_calls(operation("stepfunctions", "StartExecution"), {"stateMachineArn": "arn:aws:states:r:1:stateMachine:m"})
    assert start["action"] == "states:StartExecution" and start["resource"].endswith(":stateMachine:m")
    streaming = required_calls(operation("connect", "StartContactStreaming"), {"InstanceId": "i", "ContactId": "c"})
    assert [c["resource"].split(":")[-1] for c in streaming] == ["instance/i", "instance/i/contact/c"]
    (converse,) = required_calls(operation("bedrock-runtime", "Converse"), {"modelId": "eu.amazon.nova-lite-v1:0"})
    assert converse["action"] == "bedrock:InvokeModel" and converse["resource"].endswith(":inference-profile/eu.amazon.nova-lite-v1:0")
    (invoke,) = required_calls(operation("lambda", "Invoke"), {"FunctionName": "coexist-test-conversation", "InvocationType": "Event"})
    assert (invoke["action"], invoke["resource"]) == ("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:123456789012:function:coexist-test-conversation")
    assert queue_arn("http://127.0.0.1:5001/123456789012/q.fifo") == "arn:aws:sqs:us-east-1:123456789012:q.fifo"
    assert required_calls(operation("connectparticipant", "SendMessage"), {"ConnectionToken": "t"}) == []
    assert required_calls(operation("sts", "GetCallerIdentity", auth_type="none"), {}) == []
    (unknown,) = required_calls(operation("ec2", "RunInstances"), {})
    assert unknown["resource"] == "*"  # fails against any policy that grants specific ARNs


def test_bindings_name_the_variables_behind_an_arns_names():
    environ = {"CHATS_TABLE": "coexist-test-chats", "INBOUND_QUEUE_URL": "https://sqs.x/123456789012/coexist-test-inbound",
               "AWS_ACCOUNT_ID": "123456789012", "OTHER": "coexist-test-chatsXX"}
    assert bindings_for("arn:aws:dynamodb:us-east-1:123456789012:table/coexist-test-chats/index/i", environ) == {"CHATS_TABLE": "coexist-test-chats"}
    assert bindings_for("arn:aws:sqs:us-east-1:123456789012:coexist-test-inbound", environ) == {"INBOUND_QUEUE_URL": "coexist-test-inbound"}


# --- the contract check ----------------------------------------------------------------------------


def record(action, resource, **bindings) -> dict:
    return {"function": "ingest", "action": action, "resource": resource, "context": {}, "bindings": bindings}


def ingest_deployment(templates):
    return deployment(templates, [("ingest", "Ingress", "Ingest")])


def test_emulated_names_are_translated_through_the_functions_environment(templates):
    deployed = ingest_deployment(templates)
    allowed = [
        record("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:123456789012:table/coexist-test-chats", CHATS_TABLE="coexist-test-chats"),
        record("s3:PutObject", "arn:aws:s3:::coexist-test-archive/unhandled/ab.json", ARCHIVE_BUCKET="coexist-test-archive"),
    ]
    assert check(allowed, deployed) == []


def test_the_old_ingest_grant_refuses_a_quarantined_record(templates):
    """The grant ingest had (unhandled/ only) fails the contract for the quarantine/ and raw/ writes
    ingest makes: the check names the function, the action and the deployed ARN."""
    deployed = ingest_deployment(templates)
    calls = [
        record("s3:PutObject", "arn:aws:s3:::coexist-test-archive/quarantine/ab.json", ARCHIVE_BUCKET="coexist-test-archive"),
        record("s3:PutObject", "arn:aws:s3:::coexist-test-archive/raw/cd.json", ARCHIVE_BUCKET="coexist-test-archive"),
    ]
    assert [str(v) for v in check(calls, deployed)] == [
        "ingest: s3:PutObject on arn:aws:s3:::coexist-prod-archive-123456789012/quarantine/ab.json: not allowed by its role",
        "ingest: s3:PutObject on arn:aws:s3:::coexist-prod-archive-123456789012/raw/cd.json: not allowed by its role",
    ]


def test_a_resource_the_deployed_function_is_not_told_about_is_a_violation(templates):
    deployed = ingest_deployment(templates)
    call = record("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/coexist-test-agents", AGENTS_TABLE="coexist-test-agents")
    (violation,) = check([call], deployed)
    assert "AGENTS_TABLE" in violation.why


def test_writing_to_an_encrypted_queue_needs_its_key(templates):
    deployed = ingest_deployment(templates)
    call = record("sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:coexist-test-inbound", INBOUND_QUEUE_URL="coexist-test-inbound")
    violations = check([call], deployed)
    assert {(v.action, v.resource) for v in violations} == {
        ("kms:GenerateDataKey", "arn:aws:kms:us-east-1:123456789012:key/Key"),
        ("kms:Decrypt", "arn:aws:kms:us-east-1:123456789012:key/Key"),
    }


def test_code_that_no_deployed_function_runs_is_a_violation(templates):
    (violation,) = check([{**record("sqs:SendMessage", "*"), "function": "sweeper"}], ingest_deployment(templates))
    assert violation.function == "sweeper" and "no deployed function" in violation.why
