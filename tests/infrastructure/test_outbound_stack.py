"""Outbound stack: the FIFO queue and its DLQ, the sender, the templates sync, and who may read which secret."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Capture, Match
from coexist import resources
from coexist.settings import Settings

from stacks.constructs.shared_layer import FUNCTIONS
from stacks.outbound_stack import TEMPLATES_TIMEOUT_S

from .conftest import WRITES, actions_of_role, import_of, statements_of_role

pytestmark = pytest.mark.infra



@pytest.fixture(scope="module")
def ids(synthesised) -> dict[str, str]:
    s = synthesised.stacks.outbound
    return {
        "queue": synthesised.logical_id(s.outbound.queue),
        "dlq": synthesised.logical_id(s.outbound.dead_letters),
        "sender": synthesised.logical_id(s.sender.function),
        "sender_role": synthesised.logical_id(s.sender.role),
        "templates": synthesised.logical_id(s.templates.function),
        "templates_role": synthesised.logical_id(s.templates.role),
        "schedule": synthesised.logical_id(s.schedule),
    }


@pytest.fixture(scope="module")
def alarm_topic(synthesised) -> dict:
    """The ingress stack's alarm topic, as the outbound template imports it."""
    topic_id = synthesised.logical_id(synthesised.stacks.ingress.alarms)
    for output in synthesised.ingress.to_json()["Outputs"].values():
        if output["Value"] == {"Ref": topic_id}:
            return {"Fn::ImportValue": output["Export"]["Name"]}
    raise AssertionError("the ingress stack does not export its alarm topic")


def _resources(synthesised) -> dict:
    return synthesised.outbound.to_json()["Resources"]


def _env(synthesised, function_id: str) -> dict:
    return _resources(synthesised)[function_id]["Properties"]["Environment"]["Variables"]


def _tables_with(statements: list[dict], action: str) -> set[str]:
    """Table names (`coexist-dev-chats`) the statements allow `action` on."""
    found = set()
    for statement in statements:
        if action in statement["Action"]:
            found |= set(re.findall(r":table/([a-z0-9-]+)", json.dumps(statement["Resource"])))
    return found


def _names(config, *specs) -> set[str]:
    return {config.table_name(spec.logical_id) for spec in specs}


# --- the outbound queue --------------------------------------------------------------------------


def test_outbound_queue_is_high_throughput_fifo_encrypted_and_redrives_to_a_fifo_dlq(synthesised, ids, cmk):
    config = synthesised.stacks.config
    dlq_arn = Capture()
    synthesised.outbound.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": config.outbound_queue_name,
            "FifoQueue": True,
            # The producer sets MessageDeduplicationId = our message id: never deduplicate on content.
            "ContentBasedDeduplication": False,
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
            "VisibilityTimeout": resources.OUTBOUND_VISIBILITY_TIMEOUT_S,
            "KmsMasterKeyId": cmk,
            "RedrivePolicy": {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": resources.OUTBOUND_MAX_RECEIVES},
        },
    )
    assert dlq_arn.as_object() == {"Fn::GetAtt": [ids["dlq"], "Arn"]}
    dlq = _resources(synthesised)[ids["dlq"]]["Properties"]
    assert dlq["FifoQueue"] is True and dlq["QueueName"].endswith(".fifo")  # a FIFO queue's DLQ must be FIFO
    assert dlq["KmsMasterKeyId"] == cmk and dlq["MessageRetentionPeriod"] == 14 * 86400
    assert config.outbound_queue_name == f"coexist-{config.stage}-outbound.fifo"


def test_every_outbound_stack_queue_is_encrypted_and_refuses_plain_http(synthesised, cmk):
    queues = synthesised.outbound.find_resources("AWS::SQS::Queue")
    assert len(queues) == 7  # outbound, its DLQ, the templates sync's, the sweeper's and the reminders' DLQs, campaigns and its DLQ
    for logical_id, queue in queues.items():
        assert queue["Properties"]["KmsMasterKeyId"] == cmk, logical_id
        synthesised.outbound.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": logical_id}],
                "PolicyDocument": {"Statement": Match.array_with([
                    Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
                ])},
            },
        )


def test_the_first_dead_letter_of_each_dlq_raises_an_alarm_to_the_alarm_topic(synthesised, ids, alarm_topic):
    dlq_of_templates = synthesised.logical_id(synthesised.stacks.outbound.templates.function.dead_letter_queue)
    for dlq in (ids["dlq"], dlq_of_templates):
        synthesised.outbound.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}],
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "AlarmActions": [alarm_topic],
            },
        )


# --- the sender ----------------------------------------------------------------------------------


def test_sender_consumes_the_fifo_queue_in_batches_with_partial_failures(synthesised, ids):
    synthesised.outbound.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [ids["queue"], "Arn"]},
            "FunctionName": {"Ref": ids["sender"]},
            "BatchSize": resources.SENDER_BATCH_SIZE,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": resources.SENDER_MAX_CONCURRENCY},
        },
    )
    synthesised.outbound.resource_count_is("AWS::Lambda::EventSourceMapping", 2)  # and the campaigns function's
    sender = _resources(synthesised)[ids["sender"]]["Properties"]
    assert sender["Timeout"] == resources.SENDER_TIMEOUT_S
    # SQS would hand a message to a second sender while the first still works on it otherwise.
    assert resources.OUTBOUND_VISIBILITY_TIMEOUT_S >= 6 * sender["Timeout"]


def test_sender_can_defer_messages_on_the_outbound_queue(synthesised, ids):
    statements = statements_of_role(synthesised.outbound, ids["sender_role"])
    on_queue = [s for s in statements if s["Resource"] == {"Fn::GetAtt": [ids["queue"], "Arn"]}]
    actions = {a for s in on_queue for a in s["Action"]}
    assert {"sqs:ChangeMessageVisibility", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= actions
    assert "sqs:SendMessage" not in actions


def test_sender_parks_messages_in_the_dlq_and_sends_nowhere_else(synthesised, ids):
    statements = statements_of_role(synthesised.outbound, ids["sender_role"])
    sending = [s for s in statements if "sqs:SendMessage" in s["Action"]]
    assert [s["Resource"] for s in sending] == [{"Fn::GetAtt": [ids["dlq"], "Arn"]}]


def test_sender_environment(synthesised, ids):
    config = synthesised.stacks.config
    env = _env(synthesised, ids["sender"])
    for spec in (
        resources.MESSAGES, resources.NUMBERS, resources.CONTACTS, resources.CHATS,
        resources.ACCOUNTS, resources.THROTTLE, resources.TEMPLATES,
    ):
        assert env[spec.env_var] == config.table_name(spec.logical_id), spec.env_var
    assert env[resources.OUTBOUND_QUEUE_ENV] == {"Ref": ids["queue"]}
    assert env[resources.OUTBOUND_DLQ_ENV] == {"Ref": ids["dlq"]}
    assert env["GRAPH_API_BASE_URL"] == "https://graph.facebook.com"
    assert env["GRAPH_API_VERSION"] == "v24.0"
    assert env["WHATSAPP_ACCESS_TOKEN_ARN"] == import_of(synthesised, synthesised.stacks.data.secrets["access_token"], None)
    assert json.loads(env["COEXIST_NUMBERS"]) == {}  # cdk.json lists no numbers
    assert env["POWERTOOLS_SERVICE_NAME"] == "coexist-sender"


def test_sender_table_access_is_exactly_what_sending_needs(synthesised, ids):
    config = synthesised.stacks.config
    statements = statements_of_role(synthesised.outbound, ids["sender_role"])
    # campaigns: a campaign message's failure counts in the campaign's progress.
    written = _names(config, resources.MESSAGES, resources.CONTACTS, resources.CHATS, resources.THROTTLE, resources.CAMPAIGNS)
    for action in WRITES:
        assert _tables_with(statements, action) == written, action
    assert _tables_with(statements, "dynamodb:GetItem") == written | _names(
        config, resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES
    )


def test_sender_has_no_end_user_messaging_permission_without_such_a_number(synthesised, ids):
    assert not {a for a in actions_of_role(synthesised.outbound, ids["sender_role"]) if a.startswith("social-messaging:")}


def test_a_send_of_unknown_outcome_pages(synthesised, ids, alarm_topic):
    service = _env(synthesised, ids["sender"])["POWERTOOLS_SERVICE_NAME"]
    synthesised.outbound.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": resources.METRICS_NAMESPACE,
        "MetricName": resources.SENDER_OUTCOME_UNKNOWN_METRIC,
        "Dimensions": [{"Name": "service", "Value": service}],
        "Threshold": 1,
        "AlarmActions": [alarm_topic],
    })


def test_circuit_breaker_alarm_watches_the_senders_metric(synthesised, ids, alarm_topic):
    service = _env(synthesised, ids["sender"])["POWERTOOLS_SERVICE_NAME"]
    synthesised.outbound.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": resources.METRICS_NAMESPACE,
            "MetricName": "SenderCircuitOpened",
            # Powertools' EMF adds the service name as the `service` dimension, and only that one.
            "Dimensions": [{"Name": "service", "Value": service}],
            "Statistic": "Sum",
            "Period": 300,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "EvaluationPeriods": 1,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [alarm_topic],
        },
    )


@pytest.mark.parametrize("function", ["sender", "templates", "sweeper", "webhook", "ingest", "api"])
def test_a_handler_that_names_its_metrics_service_uses_the_deployed_service_name(synthesised, function):
    """Alarms select on the `service` dimension: a handler that hard-codes another name than the
    function's POWERTOOLS_SERVICE_NAME would make them watch a metric nobody emits."""
    source = (FUNCTIONS / function / "handler.py").read_text()
    named = re.findall(r"\bMetrics\([^)]*\bservice\s*=\s*[\"']([^\"']+)[\"']", source)
    assert all(name == f"coexist-{function}" for name in named), named


# --- the templates sync --------------------------------------------------------------------------


def test_templates_sync_runs_hourly_with_retries(synthesised, ids):
    synthesised.outbound.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 hour)",
            "State": "ENABLED",
            "Targets": [Match.object_like({
                "Arn": {"Fn::GetAtt": [ids["templates"], "Arn"]},
                "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
            })],
        },
    )
    synthesised.outbound.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [ids["templates"], "Arn"]},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [ids["schedule"], "Arn"]},
        },
    )


def test_templates_sync_function(synthesised, ids):
    config = synthesised.stacks.config
    props = _resources(synthesised)[ids["templates"]]["Properties"]
    assert props["Timeout"] == TEMPLATES_TIMEOUT_S == 60
    dlq = synthesised.logical_id(synthesised.stacks.outbound.templates.function.dead_letter_queue)
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [dlq, "Arn"]}}  # invoked asynchronously
    env = props["Environment"]["Variables"]
    assert env[resources.TEMPLATES.env_var] == config.table_name(resources.TEMPLATES.logical_id)
    assert env[resources.NUMBERS.env_var] == config.table_name(resources.NUMBERS.logical_id)
    assert env["WHATSAPP_ACCESS_TOKEN_ARN"] == import_of(synthesised, synthesised.stacks.data.secrets["access_token"], None)
    assert env["COEXIST_WABA_IDS"] == ""
    assert {"GRAPH_API_BASE_URL", "GRAPH_API_VERSION"} <= set(env)
    statements = statements_of_role(synthesised.outbound, ids["templates_role"])
    for action in WRITES:
        assert _tables_with(statements, action) == _names(config, resources.TEMPLATES), action
    assert _tables_with(statements, "dynamodb:GetItem") == _names(config, resources.TEMPLATES, resources.NUMBERS)
    assert not {a for s in statements for a in s["Action"] if a.startswith(("s3:", "social-messaging:"))}


# --- across the stacks ---------------------------------------------------------------------------


def test_each_function_reads_only_the_secrets_it_needs(synthesised):
    data, ingress, outbound = synthesised.stacks.data, synthesised.stacks.ingress, synthesised.stacks.outbound
    kinds = {json.dumps(import_of(synthesised, secret, None)): kind for kind, secret in data.secrets.items()}
    expected = {
        (ingress, ingress.webhook): {"app_secret", "verify_token"},
        (ingress, ingress.ingest): set(),
        (ingress, ingress.agent_api): {"access_token"},
        (outbound, outbound.sender): {"access_token"},
        (outbound, outbound.templates): {"access_token"},
    }
    for (stack, fn), wanted in expected.items():
        template = synthesised.ingress if stack is ingress else synthesised.outbound
        read = set()
        for statement in statements_of_role(template, synthesised.logical_id(fn.role)):
            if "secretsmanager:GetSecretValue" in statement["Action"]:
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                read |= {kinds[json.dumps(target)] for target in targets}
        assert read == wanted, fn.service_name
    # ...and no other role of either stack reads any secret.
    for template in (synthesised.ingress, synthesised.outbound):
        for name, policy in template.find_resources("AWS::IAM::Policy").items():
            if "secretsmanager:GetSecretValue" in json.dumps(policy):
                assert any(name.startswith(p) for p in ("WebhookRole", "AgentApiRole", "SenderRole", "TemplatesSyncRole")), name


def test_the_functions_environment_is_what_coexist_settings_reads(synthesised):
    """The names the stacks write are the names coexist.settings reads (literal values checked)."""
    config = synthesised.stacks.config
    stacks = synthesised.stacks
    for template, fn in (
        (synthesised.outbound, stacks.outbound.sender),
        (synthesised.outbound, stacks.outbound.templates),
        (synthesised.ingress, stacks.ingress.agent_api),
    ):
        env = template.to_json()["Resources"][synthesised.logical_id(fn.function)]["Properties"]["Environment"]["Variables"]
        settings = Settings.from_environ({k: v for k, v in env.items() if isinstance(v, str)})
        assert settings.graph_api_base_url == config.graph_api_base_url, fn.service_name
        assert settings.graph_api_version == config.graph_api_version, fn.service_name
        assert settings.templates_table == config.table_name(resources.TEMPLATES.logical_id), fn.service_name
        assert settings.numbers_table == config.table_name(resources.NUMBERS.logical_id), fn.service_name
        if fn is not stacks.outbound.templates:
            assert settings.numbers_config == config.numbers_json()
            assert settings.throttle_table == config.table_name(resources.THROTTLE.logical_id)


def test_every_outbound_function_traces_and_logs_to_its_own_encrypted_group(synthesised, cmk):
    template = _resources(synthesised)
    for name, function in synthesised.outbound.find_resources("AWS::Lambda::Function").items():
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        group = template[props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert group["KmsKeyId"] == cmk and group["RetentionInDays"] >= 365, name
        assert props["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == resources.METRICS_NAMESPACE
    synthesised.outbound.resource_count_is("AWS::Logs::LogGroup", 5)  # one per function
    # The five functions' roles and the one EventBridge Scheduler uses for reminders, nothing else.
    synthesised.outbound.resource_count_is("AWS::IAM::Role", 6)


def test_campaign_pages_run_one_at_a_time_from_their_queue_with_exactly_the_access_they_need(synthesised):
    config = synthesised.stacks.config
    driver = synthesised.stacks.outbound.campaigns
    queue, function = synthesised.logical_id(driver.queue), synthesised.logical_id(driver.function.function)
    synthesised.outbound.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": config.campaigns_queue_name,
        "VisibilityTimeout": resources.CAMPAIGNS_VISIBILITY_TIMEOUT_S,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [synthesised.logical_id(driver.dead_letters), "Arn"]},
                          "maxReceiveCount": resources.CAMPAIGNS_MAX_RECEIVES},
    })
    synthesised.outbound.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "EventSourceArn": {"Fn::GetAtt": [queue, "Arn"]}, "FunctionName": {"Ref": function},
        "BatchSize": 1, "FunctionResponseTypes": ["ReportBatchItemFailures"],
    })
    assert _resources(synthesised)[function]["Properties"]["Timeout"] == resources.CAMPAIGNS_TIMEOUT_S
    role = synthesised.logical_id(driver.function.role)
    statements = statements_of_role(synthesised.outbound, role)
    written = _names(config, resources.CAMPAIGNS, resources.MESSAGES, resources.CHATS, resources.CUSTOMERS)
    for action in WRITES:
        assert _tables_with(statements, action) == written, action
    assert _tables_with(statements, "dynamodb:GetItem") == written | _names(
        config, resources.CONTACTS, resources.NUMBERS, resources.ACCOUNTS, resources.TEMPLATES
    )
    sends = {json.dumps(s["Resource"]) for s in statements if "sqs:SendMessage" in s["Action"]}
    assert sends == {json.dumps({"Fn::GetAtt": [queue, "Arn"]}), json.dumps({"Fn::GetAtt": [synthesised.logical_id(synthesised.stacks.outbound.outbound.queue), "Arn"]})}
