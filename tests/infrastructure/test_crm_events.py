"""The domain events' bus, who may publish on it, and the CRM delivery rule: absent by default,
an API destination with retries and a dead-letter queue once a CRM webhook is configured."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from stacks.coexist_app import build
from stacks.config import CoexistConfig
from stacks.constructs.crm_events import PUBLISHERS
from stacks.constructs.service_function import ServiceFunction
from tests.infrastructure.conftest import statements_of_role

pytestmark = pytest.mark.infra

CRM_URL = "https://api.crm.example.test/webhooks/coexist"
CRM_SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:crm/coexist-token-AbCdEf"


def functions_of(stacks):
    for stack in stacks.all:
        template = Template.from_stack(stack)
        for construct in stack.node.find_all():
            if isinstance(construct, ServiceFunction):
                role_id = stack.resolve(construct.role.node.default_child.logical_id)
                yield construct, template, role_id


def test_the_bus_is_encrypted_with_the_coexist_key(synthesised):
    buses = synthesised.data.find_resources("AWS::Events::EventBus")
    [bus] = buses.values()
    assert bus["Properties"]["Name"] == "coexist-dev-events"
    key_id = synthesised.logical_id(synthesised.stacks.data.key)
    assert bus["Properties"]["KmsKeyIdentifier"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_no_crm_delivery_exists_unless_configured(synthesised):
    for template in (synthesised.data, synthesised.ingress, synthesised.outbound, synthesised.conversations, synthesised.operations):
        assert template.find_resources("AWS::Events::ApiDestination") == {}
        assert template.find_resources("AWS::Events::Connection") == {}
    assert synthesised.data.find_resources("AWS::Events::Rule") == {}


def test_only_the_publishing_functions_may_put_events_and_only_on_the_bus(synthesised):
    seen = set()
    for function, template, role_id in functions_of(synthesised.stacks):
        puts = [s for s in statements_of_role(template, role_id) if "events:PutEvents" in s["Action"]]
        service = function.service_name.removeprefix("coexist-")
        if service not in PUBLISHERS:
            assert puts == [], service
            continue
        seen.add(service)
        assert len(puts) == 1 and puts[0]["Action"] == ["events:PutEvents"]
        resource = puts[0]["Resource"]["Fn::Join"][1]
        assert resource[-1] == ":event-bus/coexist-dev-events", resource
        environment = template.to_json()["Resources"][template_function_id(function)]["Properties"]["Environment"]["Variables"]
        assert environment["EVENT_BUS_NAME"] == "coexist-dev-events"
        assert "CRM_EVENTS_INCLUDE_TEXT" not in environment  # ids only, by default
    assert seen == set(PUBLISHERS) - {"connect-events"}  # Amazon Connect exists only when configured


def template_function_id(function) -> str:
    from aws_cdk import Stack

    return Stack.of(function).resolve(function.function.node.default_child.logical_id)


@pytest.fixture(scope="module")
def with_crm(cdk_context, tmp_path_factory):
    settings = {**cdk_context["coexist"], "stage": "crm", "crm_webhook_url": CRM_URL, "crm_webhook_secret_arn": CRM_SECRET,
                "crm_webhook_header": "X-Api-Key", "crm_events_include_text": True}
    app = App(context={**cdk_context, "coexist": settings}, outdir=str(tmp_path_factory.mktemp("cdk.out.crm")))
    stacks = build(app)
    app.synth()  # cdk-nag runs here: an unacknowledged finding fails the fixture
    return stacks


def test_a_configured_crm_gets_every_event_through_an_api_destination(with_crm):
    data = Template.from_stack(with_crm.data)
    data.has_resource_properties("AWS::Events::Connection", {
        "AuthorizationType": "API_KEY",
        "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "X-Api-Key", "ApiKeyValue": Match.any_value()}},
    })
    data.has_resource_properties("AWS::Events::ApiDestination", {"InvocationEndpoint": CRM_URL, "HttpMethod": "POST"})
    [rule] = data.find_resources("AWS::Events::Rule").values()
    properties = rule["Properties"]
    assert properties["State"] == "ENABLED" and properties["EventPattern"] == {"source": ["coexist"]}
    assert properties["EventBusName"] == {"Ref": with_crm.data.resolve(with_crm.data.crm_events.bus.node.default_child.logical_id)}
    [target] = properties["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 10 and "DeadLetterConfig" in target
    dead_letters = data.find_resources("AWS::SQS::Queue")
    assert any("KmsMasterKeyId" in q["Properties"] for q in dead_letters.values())


def test_the_ids_only_rule_is_lifted_only_by_the_setting(with_crm):
    for function, template, _ in functions_of(with_crm):
        if function.service_name.removeprefix("coexist-") in PUBLISHERS:
            variables = template.to_json()["Resources"][template_function_id(function)]["Properties"]["Environment"]["Variables"]
            assert variables["CRM_EVENTS_INCLUDE_TEXT"] == "true"


@pytest.mark.parametrize("settings, problem", [
    ({"crm_webhook_url": CRM_URL}, "go together"),
    ({"crm_webhook_url": "http://crm.example.test", "crm_webhook_secret_arn": CRM_SECRET}, "https://"),
    ({"crm_webhook_url": CRM_URL, "crm_webhook_secret_arn": "crm/token"}, "ARN"),
])
def test_a_half_or_unsafe_crm_setting_fails_the_synth(settings, problem):
    app = App(context={"coexist": settings})
    with pytest.raises(ValueError, match=problem):
        CoexistConfig.from_context(app.node)


def test_given_up_events_page_and_a_configured_crm_s_dead_letters_page(synthesised, with_crm):
    """Every publishing function's CrmEventsFailed counts in one alarm; the CRM rule's DLQ has its own,
    only where the rule exists."""
    from aws_cdk.assertions import Template

    ops = Template.from_stack(with_crm.operations).to_json()["Resources"]
    [failed] = [r["Properties"] for r in ops.values() if r["Type"] == "AWS::CloudWatch::Alarm"
                and any(m.get("Expression") == "SUM(METRICS())" for m in r["Properties"].get("Metrics", []))]
    watched = {m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] for m in failed["Metrics"] if "MetricStat" in m}
    assert watched == {f"coexist-{p}" for p in PUBLISHERS}
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in failed["Metrics"] if "MetricStat" in m} == {"CrmEventsFailed"}
    assert failed["Threshold"] == 1 and failed["AlarmActions"]
    queues = [r["Properties"]["Dimensions"] for r in ops.values() if r["Type"] == "AWS::CloudWatch::Alarm"
              and r["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    assert any("CrmDeadLetters" in json.dumps(d) for d in queues)
    assert with_crm.operations.crm_dead_letters_alarm is not None
    assert synthesised.stacks.operations.crm_dead_letters_alarm is None  # no CRM configured: no queue to watch
