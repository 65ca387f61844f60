"""cdk.json settings: typos fail loudly, and existing secrets are used instead of created."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.config import CoexistConfig

pytestmark = pytest.mark.infra

EXISTING = {"app_secret_name": "meta/app-secret", "verify_token_name": "meta/verify-token", "access_token_name": "meta/access-token"}


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


@pytest.fixture(scope="module")
def with_existing_secrets(cdk_context, synthesised, tmp_path_factory):
    from stacks.coexist_app import build

    context = {**cdk_context, "coexist": {**cdk_context["coexist"], "stage": "prod", "secrets": EXISTING}}
    app = App(context=context, outdir=str(tmp_path_factory.mktemp("cdk.out.existing")))
    stacks = build(app)
    app.synth()  # nag runs here too
    return stacks


def test_existing_secrets_are_referenced_not_created(with_existing_secrets):
    data = Template.from_stack(with_existing_secrets.data)
    data.resource_count_is("AWS::SecretsManager::Secret", 0)
    ingress = Template.from_stack(with_existing_secrets.ingress).to_json()
    webhook_policy = json.dumps(
        [r for name, r in ingress["Resources"].items() if r["Type"] == "AWS::IAM::Policy" and name.startswith("WebhookRole")]
    )
    # IAM must match the real ARN, which carries a random suffix Secrets Manager added.
    assert ":secret:meta/app-secret-??????" in webhook_policy and ":secret:meta/verify-token-??????" in webhook_policy
    assert "access-token" not in webhook_policy
