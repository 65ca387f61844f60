"""Ingress stack: the inbound path and the API, encrypted with the data stack's CMK, least privilege."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
from aws_cdk.assertions import Capture, Match, Template
from coexist import resources

from .conftest import actions_of_role, import_of, statements_of_role

pytestmark = pytest.mark.infra

TABLE_ENV = {spec.env_var for spec in resources.TABLES}


@pytest.fixture(scope="module")
def ids(synthesised) -> dict[str, str]:
    s = synthesised.stacks.ingress
    return {
        "queue": synthesised.logical_id(s.inbound.queue),
        "dlq": synthesised.logical_id(s.inbound.dead_letters),
        "raw_queue": synthesised.logical_id(s.raw_archive_queue.queue),
        "raw_dlq": synthesised.logical_id(s.raw_archive_queue.dead_letters),
        "alarms": synthesised.logical_id(s.alarms),
        "webhook_role": synthesised.logical_id(s.webhook.role),
        "ingest_role": synthesised.logical_id(s.ingest.role),
        "api_role": synthesised.logical_id(s.agent_api.role),
        "raw_archive_role": synthesised.logical_id(s.raw_archive.role),
        "webhook": synthesised.logical_id(s.webhook.function),
        "ingest": synthesised.logical_id(s.ingest.function),
        "api": synthesised.logical_id(s.agent_api.function),
        "raw_archive": synthesised.logical_id(s.raw_archive.function),
    }


def _env(synthesised, function_id: str) -> dict:
    return synthesised.ingress.to_json()["Resources"][function_id]["Properties"]["Environment"]["Variables"]


def _rendered(value) -> str:
    """A string or an Fn::Join of strings and pseudo-parameter Refs, as cdk-nag writes it: `<AWS::Region>`."""
    if isinstance(value, str):
        return value
    return "".join(part if isinstance(part, str) else f"<{part['Ref']}>" for part in value["Fn::Join"][1])


# --- inbound queue -------------------------------------------------------------------------------


def test_inbound_queue_redrives_to_its_dlq_after_the_configured_receives(synthesised, ids, cmk):
    dlq_arn = Capture()
    synthesised.ingress.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "VisibilityTimeout": resources.INBOUND_VISIBILITY_TIMEOUT_S,
            "KmsMasterKeyId": cmk,
            "RedrivePolicy": {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": resources.INBOUND_MAX_RECEIVES},
        },
    )
    assert dlq_arn.as_object() == {"Fn::GetAtt": [ids["dlq"], "Arn"]}
    synthesised.ingress.has_resource_properties("AWS::SQS::Queue", {"KmsMasterKeyId": cmk, "MessageRetentionPeriod": 14 * 86400})


@pytest.mark.parametrize("queue", ["queue", "dlq", "raw_queue", "raw_dlq"])
def test_queues_refuse_plain_http(synthesised, ids, queue):
    synthesised.ingress.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": ids[queue]}],
            "PolicyDocument": {"Statement": Match.array_with([
                Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
            ])},
        },
    )


@pytest.mark.parametrize("dlq", ["dlq", "raw_dlq"])
def test_a_single_dead_letter_raises_an_alarm_to_the_alarm_topic(synthesised, ids, cmk, dlq):
    synthesised.ingress.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [ids[dlq], "QueueName"]}}],
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [{"Ref": ids["alarms"]}],
        },
    )
    synthesised.ingress.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": cmk, "DisplayName": Match.string_like_regexp("alarms")})


def test_ingest_consumes_the_queue_in_batches_with_partial_failures(synthesised, ids):
    synthesised.ingress.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [ids["queue"], "Arn"]},
            "FunctionName": {"Ref": ids["ingest"]},
            "BatchSize": resources.INGEST_BATCH_SIZE,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "MaximumBatchingWindowInSeconds": Match.any_value(),
            # Bounded: a backlog cannot take the account's whole concurrency and starve the webhook.
            "ScalingConfig": {"MaximumConcurrency": synthesised.stacks.config.ingest_max_concurrency},
        },
    )
    ingest = synthesised.ingress.to_json()["Resources"][ids["ingest"]]["Properties"]
    assert ingest["Timeout"] == resources.INGEST_TIMEOUT_S
    # SQS would hand a message to a second consumer while the first still works on it otherwise.
    assert resources.INBOUND_VISIBILITY_TIMEOUT_S >= 6 * ingest["Timeout"]


# --- raw archive -------------------------------------------------------------------------------


def test_raw_archive_queue_is_encrypted_and_redrives_to_its_dlq_after_the_configured_receives(synthesised, ids, cmk):
    template = synthesised.ingress.to_json()["Resources"]
    queue = template[ids["raw_queue"]]["Properties"]
    assert queue["KmsMasterKeyId"] == cmk
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [ids["raw_dlq"], "Arn"]},
        "maxReceiveCount": resources.RAW_ARCHIVE_MAX_RECEIVES,
    }
    assert resources.RAW_ARCHIVE_MAX_RECEIVES == 5
    assert queue["VisibilityTimeout"] == resources.RAW_ARCHIVE_VISIBILITY_TIMEOUT_S
    dlq = template[ids["raw_dlq"]]["Properties"]
    assert dlq["KmsMasterKeyId"] == cmk and dlq["MessageRetentionPeriod"] == 14 * 86400  # two weeks to redrive


def test_raw_archive_consumes_its_queue_in_big_batches_retried_whole(synthesised, ids):
    synthesised.ingress.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [ids["raw_queue"], "Arn"]},
            "FunctionName": {"Ref": ids["raw_archive"]},
            "BatchSize": resources.RAW_ARCHIVE_BATCH_SIZE,
            "MaximumBatchingWindowInSeconds": resources.RAW_ARCHIVE_WINDOW_S,
            # A batch is one object: it is written, or retried, as a whole.
            "FunctionResponseTypes": Match.absent(),
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )
    assert (resources.RAW_ARCHIVE_BATCH_SIZE, resources.RAW_ARCHIVE_WINDOW_S) == (1000, 300)
    template = synthesised.ingress.to_json()["Resources"]
    function = template[ids["raw_archive"]]["Properties"]
    assert function["Timeout"] == resources.RAW_ARCHIVE_TIMEOUT_S
    assert function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "coexist-raw-archive"
    # Lambda keeps a batch invisible from the window's start; shorter, SQS would hand the bodies out twice.
    visibility = template[ids["raw_queue"]]["Properties"]["VisibilityTimeout"]
    assert visibility >= resources.RAW_ARCHIVE_WINDOW_S + 6 * function["Timeout"]


def test_raw_archive_role_may_only_put_objects_under_raw(synthesised, ids):
    statements = statements_of_role(synthesised.ingress, ids["raw_archive_role"])
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]
    # PutObject alone: no read, no delete, no retention or legal-hold changes.
    assert {a for s in s3_statements for a in s["Action"]} == {"s3:PutObject"}
    targets = [_rendered(r) for s in s3_statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    bucket = synthesised.stacks.config.archive_bucket_name("<AWS::AccountId>", "<AWS::Region>")
    assert targets == [f"arn:<AWS::Partition>:s3:::{bucket}/raw/*"]
    assert _rendered(_env(synthesised, ids["raw_archive"])[resources.ARCHIVE_BUCKET_ENV]) == bucket
    # The bucket encrypts with the Coexist key; reading the queue decrypts with it.
    assert {"kms:Encrypt", "kms:GenerateDataKey*", "kms:Decrypt"} <= actions_of_role(synthesised.ingress, ids["raw_archive_role"])
    assert not {a for s in statements for a in s["Action"] if a.startswith("dynamodb:") or a.startswith("secretsmanager:")}


def test_webhook_may_send_to_the_raw_archive_queue_and_is_told_its_url(synthesised, ids):
    assert _env(synthesised, ids["webhook"])[resources.RAW_ARCHIVE_QUEUE_ENV] == {"Ref": ids["raw_queue"]}
    sends = [s for s in statements_of_role(synthesised.ingress, ids["webhook_role"]) if "sqs:SendMessage" in s["Action"]]
    targets = [r for s in sends for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert {"Fn::GetAtt": [ids["raw_queue"], "Arn"]} in targets
    assert {"Fn::GetAtt": [ids["queue"], "Arn"]} in targets
    # Sending only: the webhook never consumes either queue.
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & actions_of_role(synthesised.ingress, ids["webhook_role"])


def test_ingest_sends_end_user_messaging_social_bodies_to_the_raw_archive_queue(synthesised, ids):
    assert _env(synthesised, ids["ingest"])[resources.RAW_ARCHIVE_QUEUE_ENV] == {"Ref": ids["raw_queue"]}
    sends = [s for s in statements_of_role(synthesised.ingress, ids["ingest_role"]) if "sqs:SendMessage" in s["Action"]]
    targets = [r for s in sends for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])]
    assert {"Fn::GetAtt": [ids["raw_queue"], "Arn"]} in targets


def test_end_user_messaging_social_events_reach_the_inbound_queue_raw(synthesised, ids, cmk):
    topic = Capture()
    synthesised.ingress.has_resource_properties(
        "AWS::SNS::Subscription",
        {"Protocol": "sqs", "RawMessageDelivery": True, "Endpoint": {"Fn::GetAtt": [ids["queue"], "Arn"]}, "TopicArn": {"Ref": topic}},
    )
    topic_props = synthesised.ingress.to_json()["Resources"][topic.as_string()]["Properties"]
    assert topic_props["KmsMasterKeyId"] == cmk
    synthesised.ingress.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic.as_string()}],
            "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
                "Effect": "Allow", "Action": "sns:Publish", "Principal": {"Service": "social-messaging.amazonaws.com"},
            })])},
        },
    )


# --- functions -----------------------------------------------------------------------------------


def test_every_function_traces_and_logs_to_its_own_encrypted_group(synthesised, cmk):
    template = synthesised.ingress.to_json()["Resources"]
    log_groups = set()
    for name, function in synthesised.ingress.find_resources("AWS::Lambda::Function").items():
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        assert props["Handler"] == "handler.lambda_handler", name
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == resources.METRICS_NAMESPACE and env["POWERTOOLS_SERVICE_NAME"], name
        group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        group = template[group_id]["Properties"]
        assert group["KmsKeyId"] == cmk and group["RetentionInDays"] >= 365, name
        log_groups.add(group_id)
    assert len(log_groups) == 4


def test_api_gateway_and_waf_logs_are_encrypted_with_the_cmk(synthesised, cmk):
    groups = synthesised.ingress.find_resources("AWS::Logs::LogGroup")
    assert len(groups) == 6  # four functions, API access logs, WAF
    assert all(g["Properties"]["KmsKeyId"] == cmk for g in groups.values())


def test_webhook_gets_secret_arns_never_secret_values(synthesised, ids):
    data = synthesised.stacks.data
    env = _env(synthesised, ids["webhook"])
    assert env["WHATSAPP_APP_SECRET_ARN"] == import_of(synthesised, data.secrets["app_secret"], None)
    assert env["WHATSAPP_VERIFY_TOKEN_ARN"] == import_of(synthesised, data.secrets["verify_token"], None)
    assert set(env) >= {"ARCHIVE_BUCKET", "INBOUND_QUEUE_URL", "RAW_ARCHIVE_QUEUE_URL", "COEXIST_STAGE"}


@pytest.mark.parametrize("stack", ["ingress", "outbound"])
def test_no_environment_variable_carries_a_secret_value(synthesised, stack):
    for name, function in getattr(synthesised, stack).find_resources("AWS::Lambda::Function").items():
        for var, value in function["Properties"]["Environment"]["Variables"].items():
            rendered = json.dumps(value)
            # How a secret value would get there: a {{resolve:secretsmanager}} dynamic reference.
            assert "resolve:secretsmanager" not in rendered and "resolve:ssm-secure" not in rendered, (name, var)
            table_names = {spec.env_var for spec in resources.TABLES}  # TASK_TOKENS_TABLE names a table
            if re.search(r"SECRET|TOKEN|PASSWORD", var) and var != "COEXIST_API_AUTH" and var not in table_names:
                assert var.endswith("_ARN"), (name, var)


@pytest.mark.parametrize("function", ["ingest", "api"])
def test_table_readers_get_every_table_name(synthesised, ids, function):
    env = _env(synthesised, ids[function])
    config = synthesised.stacks.config
    assert {var: env[var] for var in TABLE_ENV} == {
        spec.env_var: config.table_name(spec.logical_id) for spec in resources.TABLES
    }
    # ...and those names are the tables the data stack creates.
    created = {t["Properties"]["TableName"] for t in synthesised.data.find_resources("AWS::DynamoDB::Table").values()}
    assert set(env[var] for var in TABLE_ENV) == created


def test_api_function_trusts_cognito(synthesised, ids):
    assert _env(synthesised, ids["api"])["COEXIST_API_AUTH"] == "cognito"


# --- least privilege -----------------------------------------------------------------------------


def test_webhook_role_cannot_touch_dynamodb_and_writes_only_raw_and_quarantine(synthesised, ids):
    actions = actions_of_role(synthesised.ingress, ids["webhook_role"])
    assert not {a for a in actions if a.startswith("dynamodb:")}
    assert {"sqs:SendMessage", "s3:PutObject", "secretsmanager:GetSecretValue"} <= actions
    put_targets = [
        json.dumps(s["Resource"]) for s in statements_of_role(synthesised.ingress, ids["webhook_role"]) if "s3:PutObject" in s["Action"]
    ]
    assert put_targets and all("/raw/*" in t or "/quarantine/*" in t for t in put_targets)
    assert any("/raw/*" in t for t in put_targets) and any("/quarantine/*" in t for t in put_targets)


def _table_of(resource) -> str:
    """`coexist-dev-chats` from a table (or `.../index/*`) ARN in a policy."""
    rendered = json.dumps(resource)
    return re.search(r":table/([a-z0-9-]+)", rendered).group(1)


def _tables_with(statements: list[dict], action: str) -> set[str]:
    found = set()
    for statement in statements:
        if action in statement["Action"]:
            resources_ = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            found |= {_table_of(r) for r in resources_ if ":table/" in json.dumps(r)}
    return found


def test_api_role_writes_only_what_sending_the_templates_sync_the_agent_directory_and_consent_write(synthesised, ids):
    config = synthesised.stacks.config
    statements = statements_of_role(synthesised.ingress, ids["api_role"])
    names = lambda *specs: {config.table_name(s.logical_id) for s in specs}  # noqa: E731
    # The queued outbound message, its chat's last-message time and conversation state, the synced
    # templates, the agent directory (POST /api/agents, availability, accept), the consent ledger
    # (PUT /api/contacts/{chat_id}/consent, imports), reminders, campaigns (a new campaign's pages,
    # pause / resume / cancel, the messaging limit an admin sets), the customers a consent import or a
    # campaign names by phone number before they ever wrote.
    writes = names(resources.MESSAGES, resources.CHATS, resources.TASK_TOKENS, resources.TEMPLATES, resources.AGENTS, resources.CONTACTS,
                   resources.REMINDERS, resources.CAMPAIGNS, resources.CUSTOMERS)
    # Customers' rights: legal holds, the erasure list and export requests.
    writes |= names(resources.PRIVACY)
    # The audit trail is appended to (PutItem) and never updated or deleted.
    assert _tables_with(statements, "dynamodb:PutItem") == writes | names(resources.AUDIT)
    assert _tables_with(statements, "dynamodb:UpdateItem") == writes
    # Erasure also deletes the customer's identity rows (customers are among the writes).
    assert _tables_with(statements, "dynamodb:DeleteItem") == writes
    readable = names(resources.NUMBERS, resources.ACCOUNTS, resources.COSTS, resources.AUDIT)  # costs: the report
    assert _tables_with(statements, "dynamodb:Query") == writes | readable
    # S3: only reading export files, to sign their links.
    assert {a for s in statements for a in s["Action"] if a.startswith("s3:")} == {"s3:GetObject"}


def test_api_role_sends_to_the_outbound_queue_and_cannot_touch_the_inbound_queue(synthesised, ids):
    config = synthesised.stacks.config
    sqs_statements = [s for s in statements_of_role(synthesised.ingress, ids["api_role"]) if any(a.startswith("sqs:") for a in s["Action"])]
    # The outbound queue (sends) and the campaigns queue (a campaign's first page), nothing else.
    (only,) = sqs_statements
    assert "sqs:SendMessage" in only["Action"]
    assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"} & set(only["Action"])
    # By their fixed names: the outbound stack creates the outbound and campaigns queues, the
    # compliance stack the exports queue (customers' export requests).
    queues = only["Resource"] if isinstance(only["Resource"], list) else [only["Resource"]]
    names = sorted(json.dumps(q).rsplit(":", 1)[1].split('"')[0] for q in queues)  # the ARN's last part
    assert names == sorted([config.exports_queue_name, config.outbound_queue_name, config.campaigns_queue_name])
    compliance_names = [q["Properties"].get("QueueName") for q in synthesised.compliance.find_resources("AWS::SQS::Queue").values()]
    assert config.exports_queue_name in compliance_names
    outbound_names = [q["Properties"].get("QueueName") for q in synthesised.outbound.find_resources("AWS::SQS::Queue").values()]
    assert {config.outbound_queue_name, config.campaigns_queue_name} <= set(outbound_names)
    for queue in ("queue", "dlq", "raw_queue", "raw_dlq"):
        assert ids[queue] not in json.dumps(statements_of_role(synthesised.ingress, ids["api_role"])), queue


def test_api_function_is_told_how_to_send(synthesised, ids):
    config = synthesised.stacks.config
    env = _env(synthesised, ids["api"])
    assert env[resources.OUTBOUND_QUEUE_ENV] == {"Fn::Join": ["", [
        "https://sqs.", {"Ref": "AWS::Region"}, ".", {"Ref": "AWS::URLSuffix"}, "/", {"Ref": "AWS::AccountId"},
        f"/{config.outbound_queue_name}",
    ]]}
    assert env["WHATSAPP_ACCESS_TOKEN_ARN"] == import_of(synthesised, synthesised.stacks.data.secrets["access_token"], None)
    assert env["GRAPH_API_BASE_URL"] == config.graph_api_base_url == "https://graph.facebook.com"
    assert env["GRAPH_API_VERSION"] == config.graph_api_version == "v24.0"
    assert json.loads(env["COEXIST_NUMBERS"]) == {}
    assert env["COEXIST_WABA_IDS"] == ""
    assert env[resources.TEMPLATES.env_var] == config.table_name(resources.TEMPLATES.logical_id)


def test_ingest_writes_tables_reads_raw_and_archives_what_it_writes(synthesised, ids):
    statements = statements_of_role(synthesised.ingress, ids["ingest_role"])
    actions = {a for s in statements for a in s["Action"]}
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= actions
    assert "secretsmanager:GetSecretValue" not in actions
    puts = [json.dumps(s["Resource"]) for s in statements if "s3:PutObject" in s["Action"]]
    # unhandled changes, quarantined records and End User Messaging Social bodies (raw/): each
    # prefix ingest writes under, and no other.
    prefixes = {prefix for p in puts for prefix in re.findall(r'/([a-z_]+)/\*"', p)}
    assert prefixes == {"unhandled", "quarantine", "raw"}
    reads = [json.dumps(s["Resource"]) for s in statements if "s3:GetObject*" in s["Action"]]
    assert reads and all("/raw/*" in r for r in reads)


def test_function_roles_have_no_managed_policies(synthesised, ids):
    roles = synthesised.ingress.to_json()["Resources"]
    for role in ("webhook_role", "ingest_role", "api_role", "raw_archive_role"):
        assert "ManagedPolicyArns" not in roles[ids[role]]["Properties"], role


# --- alarms --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "service"),
    [("WebhookFailed", "coexist-webhook"), ("WebhookQuarantined", "coexist-webhook"), ("IngestQuarantined", "coexist-ingest")],
)
def test_a_lost_or_quarantined_webhook_pages_the_operator(synthesised, ids, metric, service):
    synthesised.ingress.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": resources.METRICS_NAMESPACE,
            "MetricName": metric,
            "Dimensions": [{"Name": "service", "Value": service}],
            "Statistic": "Sum",
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": ids["alarms"]}],
        },
    )


def test_every_function_pages_the_operator_when_it_fails(synthesised):
    from stacks.constructs.service_function import ServiceFunction

    topic = {"Ref": synthesised.logical_id(synthesised.stacks.ingress.alarms)}
    functions = [
        (stack, c) for stack in synthesised.stacks.all for c in stack.node.find_all() if isinstance(c, ServiceFunction)
    ]
    assert len(functions) >= 6
    for stack, function in functions:
        template = Template.from_stack(stack)
        function_id = synthesised.logical_id(function.function)
        alarm_topic = topic if stack is synthesised.stacks.ingress else import_of_topic(template, synthesised)
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
                "Threshold": 1,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "AlarmActions": [alarm_topic],
            },
        )


def import_of_topic(template, synthesised) -> dict:
    """How a stack after the ingress stack names its alarm topic: the import of its export."""
    actions = {json.dumps(a["Properties"]["AlarmActions"]) for a in template.find_resources("AWS::CloudWatch::Alarm").values()}
    imports = [json.loads(a)[0] for a in actions if "Fn::ImportValue" in a]
    assert len({json.dumps(i) for i in imports}) == 1  # one alarm topic for every alarm
    return imports[0]


# --- REST API ------------------------------------------------------------------------------------


def test_webhook_methods_are_unauthenticated_and_the_agent_api_needs_cognito(synthesised, ids):
    methods = synthesised.ingress.find_resources("AWS::ApiGateway::Method")
    # CORS preflights for the console's origin are answered by API Gateway itself (test_console_stacks.py).
    methods = {k: m for k, m in methods.items() if m["Properties"]["HttpMethod"] != "OPTIONS"}
    by_verb = {(m["Properties"]["HttpMethod"], m["Properties"]["Integration"]["Uri"]["Fn::Join"][1][5]["Fn::GetAtt"][0]): m["Properties"] for m in methods.values()}
    assert by_verb[("GET", ids["webhook"])]["AuthorizationType"] == "NONE"
    assert by_verb[("POST", ids["webhook"])]["AuthorizationType"] == "NONE"
    agent = by_verb[("ANY", ids["api"])]
    assert agent["AuthorizationType"] == "COGNITO_USER_POOLS" and "Ref" in agent["AuthorizerId"]
    assert len(methods) == 3  # nothing else is exposed
    handshake = by_verb[("GET", ids["webhook"])]
    assert handshake["RequestParameters"] == {f"method.request.querystring.hub.{p}": True for p in ("mode", "verify_token", "challenge")}


def test_api_hands_the_webhook_exact_body_bytes(synthesised):
    synthesised.ingress.has_resource_properties("AWS::ApiGateway::RestApi", {"BinaryMediaTypes": ["application/json"]})


def test_stage_logs_errors_without_bodies_traces_and_throttles(synthesised):
    config = synthesised.stacks.config
    synthesised.ingress.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("resourcePath")},
            "MethodSettings": Match.array_with([Match.object_like({
                "HttpMethod": "*", "ResourcePath": "/*", "LoggingLevel": "ERROR", "DataTraceEnabled": False,
                "ThrottlingRateLimit": config.api_throttle_rate, "ThrottlingBurstLimit": config.api_throttle_burst,
            })]),
        },
    )
    synthesised.ingress.resource_count_is("AWS::ApiGateway::Account", 1)  # the CloudWatch role is wired


def test_the_webhook_and_the_agent_api_are_throttled_apart(synthesised):
    config = synthesised.stacks.config
    (stage,) = synthesised.ingress.find_resources("AWS::ApiGateway::Stage").values()
    limits = {
        (m["ResourcePath"], m["HttpMethod"]): (m.get("ThrottlingRateLimit"), m.get("ThrottlingBurstLimit"))
        for m in stage["Properties"]["MethodSettings"]
    }
    webhook = (config.webhook_throttle_rate, config.webhook_throttle_burst)
    api = (config.api_throttle_rate, config.api_throttle_burst)
    assert webhook != api  # otherwise this test could not tell them apart
    # API Gateway's method-setting paths encode "/" as "~1".
    assert limits[("/~1webhook", "POST")] == limits[("/~1webhook", "GET")] == webhook
    assert limits[("/~1api~1{proxy+}", "*")] == api
    # The paths name the deployed resources, or API Gateway would ignore the settings.
    paths = {r["Properties"]["PathPart"] for r in synthesised.ingress.find_resources("AWS::ApiGateway::Resource").values()}
    assert {"webhook", "api", "{proxy+}"} <= paths


def _waf_rules(template) -> dict[str, dict]:
    acl = Capture()
    template.has_resource_properties("AWS::WAFv2::WebACLAssociation", {"WebACLArn": {"Fn::GetAtt": [acl, "Arn"]}})
    return {rule["Name"]: rule for rule in template.to_json()["Resources"][acl.as_string()]["Properties"]["Rules"]}


def _path_matcher(statement: dict):
    """A WAF path statement as a predicate on the URI path API Gateway's stage receives."""
    regex = statement["RegexMatchStatement"]
    assert regex["FieldToMatch"] == {"UriPath": {}}
    assert [t["Type"] for t in regex["TextTransformations"]] == ["URL_DECODE"]
    return lambda path: re.search(regex["RegexString"], urllib.parse.unquote(path)) is not None


BODY_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_waf_inspects_every_body_but_the_webhooks_on_the_stages_real_paths(synthesised, customised, stage):
    template = synthesised.ingress if stage == "dev" else Template.from_stack(customised.ingress)
    rules = _waf_rules(template)
    assert set(BODY_RULE_GROUPS) <= set(rules)
    for name in BODY_RULE_GROUPS:
        exempt = _path_matcher(rules[name]["Statement"]["ManagedRuleGroupStatement"]["ScopeDownStatement"]["NotStatement"]["Statement"])
        # Meta calls the execute-api URL, whose path carries the stage; a custom domain's does not.
        assert exempt(f"/{stage}/webhook") and exempt("/webhook") and exempt(f"/{stage}/webhook/")
        for inspected in (f"/{stage}/api/chats", f"/{stage}/api/webhook", f"/{stage}/webhooks", f"/other/webhook", "/", f"/{stage}/"):
            assert not exempt(inspected), (name, inspected)
    assert "ScopeDownStatement" not in rules["AWSManagedRulesAmazonIpReputationList"]["Statement"]["ManagedRuleGroupStatement"]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_waf_keeps_the_8_kb_body_limit_everywhere_but_the_webhook_and_the_two_uploads(synthesised, customised, stage):
    template = synthesised.ingress if stage == "dev" else Template.from_stack(customised.ingress)
    rules = _waf_rules(template)
    overrides = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
    assert overrides == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]  # counted there, applied below
    rule = rules["BodySizeOutsideUploads"]
    assert rule["Action"] == {"Block": {}}
    not_webhook, not_upload, size = rule["Statement"]["AndStatement"]["Statements"]
    exempt_webhook, exempt_upload = _path_matcher(not_webhook["NotStatement"]["Statement"]), _path_matcher(not_upload["NotStatement"]["Statement"])
    assert exempt_webhook(f"/{stage}/webhook") and exempt_webhook("/webhook")
    for upload in (f"/{stage}/api/campaigns", f"/{stage}/api/consent/imports", "/api/campaigns", f"/{stage}/api/%63ampaigns"):
        assert exempt_upload(upload), upload
    for limited in (f"/{stage}/api/chats/c1/messages", f"/{stage}/api/campaigns/k1/pause", f"/{stage}/api/consent/imports/x",
                    f"/{stage}/api/contacts/c1/consent", f"/{stage}/api/agents/ana"):
        assert not exempt_upload(limited) and not exempt_webhook(limited), limited
    constraint = size["SizeConstraintStatement"]
    assert (constraint["ComparisonOperator"], constraint["Size"]) == ("GT", 8192)
    assert constraint["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}  # beyond what WAF reads counts as too big


def test_waf_blocks_a_client_ip_over_its_rate_on_the_agent_api_only(synthesised):
    config = synthesised.stacks.config
    rule = _waf_rules(synthesised.ingress)["ApiRequestsPerClientIp"]
    assert rule["Action"] == {"Block": {}}
    rate = rule["Statement"]["RateBasedStatement"]
    assert (rate["AggregateKeyType"], rate["Limit"], rate["EvaluationWindowSec"]) == ("IP", config.api_rate_limit_per_ip, 300)
    limited = _path_matcher(rate["ScopeDownStatement"])
    assert limited("/dev/api/chats") and limited("/dev/api") and limited("/dev/%61pi/chats") and limited("/api/chats")
    assert not limited("/dev/webhook") and not limited("/dev/apis") and not limited("/dev/x/api/chats")


def test_waf_protects_the_stage_and_logs_without_paths(synthesised):
    stage_id = synthesised.logical_id(synthesised.stacks.ingress.rest.rest_api.deployment_stage)
    association = synthesised.ingress.find_resources("AWS::WAFv2::WebACLAssociation")
    assert stage_id in json.dumps(association)
    synthesised.ingress.has_resource_properties(
        "AWS::WAFv2::LoggingConfiguration", {"RedactedFields": Match.array_with([{"UriPath": {}}])}
    )


def test_agent_pool_requires_mfa_and_strong_passwords(synthesised):
    synthesised.ingress.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "MfaConfiguration": "ON",
            "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
            "Policies": {"PasswordPolicy": Match.object_like({"MinimumLength": Match.any_value(), "RequireSymbols": True})},
            "UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"},
        },
    )
    pool = next(iter(synthesised.ingress.find_resources("AWS::Cognito::UserPool").values()))
    assert pool["Properties"]["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
