"""cdk.json settings: typos fail loudly, existing secrets are used instead of created, and the sending
settings (numbers, accounts, Graph API) and the conversation settings reach the functions."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.config import CoexistConfig, PhoneNumber

from .conftest import EXISTING, PHONE_NUMBERS, SOCIAL_ID

pytestmark = pytest.mark.infra


def test_an_unknown_setting_fails_synth():
    with pytest.raises(ValueError, match="archive_retention"):
        CoexistConfig.from_context(App(context={"coexist": {"archive_retention": 30}}).node)


def test_settings_can_be_passed_as_json_on_the_command_line():
    config = CoexistConfig.from_context(App(context={"coexist": json.dumps({"stage": "prod", "secrets": EXISTING})}).node)
    assert config.stage == "prod" and config.secrets.app_secret_name == "meta/app-secret"
    assert config.table_name("Chats") == "coexist-prod-chats"


def test_the_checked_in_cdk_json_is_valid(cdk_context):
    config = CoexistConfig.from_context(App(context=cdk_context).node)
    assert config.archive_lock_mode == "GOVERNANCE" and config.deletion_protection


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"phone_number_id": "1", "transport": "sms"}, "transport"),
        ({"phone_number_id": "1", "transport": "social_messaging"}, "social_messaging_phone_number_id"),
        ({"phone_number_id": "1", "transport": "social_messaging", "social_messaging_phone_number_id": "123"}, "social_messaging_phone_number_id"),
        ({"phone_number_id": "1", "throughput": 20}, "unknown keys"),
        ({"phone_number_id": "1", "throughput_mps": 0}, "throughput_mps"),
        ({"throughput_mps": 20}, "phone_number_id"),
    ],
)
def test_a_wrong_phone_numbers_entry_fails_synth(entry, problem):
    with pytest.raises(ValueError, match=problem):
        CoexistConfig.from_context(App(context={"coexist": {"phone_numbers": [entry]}}).node)


def test_a_number_listed_twice_fails_synth():
    with pytest.raises(ValueError, match="twice"):
        CoexistConfig.from_context(App(context={"coexist": {"phone_numbers": ["1", {"phone_number_id": "1"}]}}).node)


@pytest.mark.parametrize(("setting", "value"), [("graph_api_base_url", "http://graph.facebook.com"), ("graph_api_version", "24")])
def test_a_wrong_graph_api_setting_fails_synth(setting, value):
    with pytest.raises(ValueError, match=setting):
        CoexistConfig.from_context(App(context={"coexist": {setting: value}}).node)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("ingest_max_concurrency", 1), ("ingest_max_concurrency", 1001), ("api_rate_limit_per_ip", 9)],
)
def test_limits_outside_what_aws_accepts_fail_synth(setting, value):
    with pytest.raises(ValueError, match=setting):
        CoexistConfig.from_context(App(context={"coexist": {setting: value}}).node)


def test_limits_within_what_aws_accepts_are_taken():
    config = CoexistConfig.from_context(App(context={"coexist": {"ingest_max_concurrency": 2, "api_rate_limit_per_ip": 10}}).node)
    assert (config.ingest_max_concurrency, config.api_rate_limit_per_ip) == (2, 10)


def test_waba_ids_may_be_a_list_or_comma_separated():
    for value in (["111", "222"], "111, 222", "111,222,"):
        assert CoexistConfig.from_context(App(context={"coexist": {"waba_ids": value}}).node).waba_ids == ("111", "222")


def test_end_user_messaging_social_arn_of_a_number():
    # The phone number's ARN ends in phone-number-id/<hex>: the id without its "phone-number-id-" prefix.
    number = PhoneNumber.parse(PHONE_NUMBERS[2])
    assert number.social_messaging_resource() == "phone-number-id/0123456789abcdef0123456789abcdef"
    arn = "arn:aws:social-messaging:eu-west-1:123456789012:phone-number-id/0123456789abcdef"
    given = PhoneNumber.parse({"phone_number_id": "4", "transport": "social_messaging", "social_messaging_phone_number_id": arn})
    assert given.social_messaging_resource() == arn
    assert PhoneNumber.parse("5").social_messaging_resource() is None


def _policies(template, prefix: str) -> str:
    return json.dumps(
        [r for name, r in template.to_json()["Resources"].items() if r["Type"] == "AWS::IAM::Policy" and name.startswith(prefix)]
    )


def _env(template, prefix: str) -> dict:
    (function,) = [
        r for name, r in template.to_json()["Resources"].items() if r["Type"] == "AWS::Lambda::Function" and name.startswith(prefix)
    ]
    return function["Properties"]["Environment"]["Variables"]


def test_existing_secrets_are_referenced_not_created(customised):
    data = Template.from_stack(customised.data)
    data.resource_count_is("AWS::SecretsManager::Secret", 0)
    ingress, outbound = Template.from_stack(customised.ingress), Template.from_stack(customised.outbound)
    webhook_policy = _policies(ingress, "WebhookRole")
    # IAM must match the real ARN, which carries a random suffix Secrets Manager added.
    assert ":secret:meta/app-secret-??????" in webhook_policy and ":secret:meta/verify-token-??????" in webhook_policy
    assert "access-token" not in webhook_policy
    for template, role in ((ingress, "AgentApiRole"), (outbound, "SenderRole"), (outbound, "TemplatesSyncRole")):
        policy = _policies(template, role)
        assert ":secret:meta/access-token-??????" in policy and "app-secret" not in policy and "verify-token" not in policy, role


def test_phone_numbers_reach_the_sender_and_the_api_as_json(customised):
    expected = {
        "1111111111": {},
        "2222222222": {"throughput_mps": 20, "transport": "graph"},
        "3333333333": {"throughput_mps": 20, "transport": "social_messaging", "social_messaging_phone_number_id": SOCIAL_ID},
        **{entry["phone_number_id"]: {k: v for k, v in entry.items() if k != "phone_number_id"} for entry in PHONE_NUMBERS[3:]},
    }
    ingress, outbound = Template.from_stack(customised.ingress), Template.from_stack(customised.outbound)
    assert json.loads(_env(outbound, "SenderFunction")["COEXIST_NUMBERS"]) == expected
    assert json.loads(_env(ingress, "AgentApiFunction")["COEXIST_NUMBERS"]) == expected


def test_graph_api_settings_and_accounts_reach_the_functions(customised):
    ingress, outbound = Template.from_stack(customised.ingress), Template.from_stack(customised.outbound)
    for template, prefix in ((outbound, "SenderFunction"), (outbound, "TemplatesSyncFunction"), (ingress, "AgentApiFunction")):
        env = _env(template, prefix)
        assert env["GRAPH_API_BASE_URL"] == "https://graph.example.test" and env["GRAPH_API_VERSION"] == "v25.0", prefix
    assert _env(outbound, "TemplatesSyncFunction")["COEXIST_WABA_IDS"] == "9999999999,8888888888"
    assert _env(ingress, "AgentApiFunction")["COEXIST_WABA_IDS"] == "9999999999,8888888888"


def test_sender_may_send_through_end_user_messaging_from_the_configured_number_only(customised):
    outbound = Template.from_stack(customised.outbound)
    statements = [
        s for policy in outbound.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "social-messaging" in json.dumps(s["Action"])
    ]
    assert statements == [{
        "Action": "social-messaging:SendWhatsAppMessage",
        "Effect": "Allow",
        "Resource": {"Fn::Join": ["", [
            "arn:", {"Ref": "AWS::Partition"}, ":social-messaging:", {"Ref": "AWS::Region"}, ":",
            {"Ref": "AWS::AccountId"}, ":phone-number-id/0123456789abcdef0123456789abcdef",
        ]]},
    }]
    assert "social-messaging" in _policies(outbound, "SenderRole")
    assert "social-messaging" not in _policies(outbound, "TemplatesSyncRole")


# --- conversations and Amazon Connect ------------------------------------------------------------


@pytest.mark.parametrize(
    ("conversation", "problem"),
    [
        ({"accept_timeout": 60}, "unknown COEXIST_CONVERSATION keys"),
        ({"accept_timeout_s": "60"}, "accept_timeout_s must be of type int"),
        ({"survey": "yes"}, "survey must be of type bool"),
        ({"max_assign_attempts": True}, "max_assign_attempts must be of type int"),
        ({"agent_idle_s": -1}, "agent_idle_s must not be negative"),
        ({"max_assign_attempts": 0}, "max_assign_attempts must not be negative"),
        ({"unassigned_template": "busy"}, "name:language"),
        ({"intent_skills": {"billing": 3}}, "intent_skills"),
        ([], "must be an object"),
    ],
)
def test_a_wrong_conversation_setting_fails_synth(conversation, problem):
    with pytest.raises(ValueError, match=problem):
        CoexistConfig.from_context(App(context={"coexist": {"conversation": conversation}}).node)


def test_conversation_settings_are_passed_on_as_given():
    given = {"takeover_cool_down_s": 600, "survey": False, "unassigned_template": "busy_now:en_US"}
    config = CoexistConfig.from_context(App(context={"coexist": {"conversation": given}}).node)
    assert json.loads(config.conversation_environment()["COEXIST_CONVERSATION"]) == given
    assert CoexistConfig().conversation_environment() == {"COEXIST_CONVERSATION": "{}"}  # the defaults


@pytest.mark.parametrize(
    ("bot", "problem"),
    [
        ({"provider": "dialogflow"}, "bot of 1"),
        ({"provider": "lex", "bot_id": "B"}, "bot_alias_id"),
        ({"provider": "bedrock"}, "model_id"),
        ({"provider": "bedrock", "model_id": "m", "temperature": 3}, "temperature"),
        ({"provider": "rules", "extra": 1}, "extra"),
        ("lex", "must be an object"),
    ],
)
def test_a_wrong_bot_fails_synth(bot, problem):
    with pytest.raises(ValueError, match=problem):
        CoexistConfig.from_context(App(context={"coexist": {"phone_numbers": [{"phone_number_id": "1", "bot": bot}]}}).node)


@pytest.mark.parametrize(
    ("connect", "problem"),
    [
        ({"instance_id": "my-instance", "contact_flow_id": "9f8e7d6c-5b4a-3210-fedc-ba9876543210"}, "instance_id"),
        ({"instance_id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"}, "contact_flow_id"),
        ({"instance_id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "contact_flow_id": "9f8e7d6c-5b4a-3210-fedc-ba9876543210",
          "queue_id": "q"}, "unknown keys in connect"),
        ("0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "must be an object"),
    ],
)
def test_a_wrong_connect_setting_fails_synth(connect, problem):
    with pytest.raises(ValueError, match=problem):
        CoexistConfig.from_context(App(context={"coexist": {"connect": connect}}).node)


def test_connect_is_off_unless_configured(cdk_context):
    assert CoexistConfig.from_context(App(context=cdk_context).node).connect is None
    assert CoexistConfig.from_context(App(context={"coexist": {"connect": None}}).node).connect is None


@pytest.mark.parametrize(
    ("humans", "connect", "problem"),
    [
        ({"provider": "zendesk"}, True, "provider 'directory' or 'connect'"),
        ({"provider": "connect", "instance_id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5e"}, True, "come from the `connect` setting"),
        ({"provider": "connect"}, False, "`connect` setting"),
    ],
)
def test_a_wrong_humans_setting_fails_synth(humans, connect, problem):
    settings = {"phone_numbers": [{"phone_number_id": "1", "humans": humans}]}
    if connect:
        settings["connect"] = {"instance_id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "contact_flow_id": "9f8e7d6c-5b4a-3210-fedc-ba9876543210"}
    with pytest.raises(ValueError, match=problem):
        CoexistConfig.from_context(App(context={"coexist": settings}).node)
