"""Synthesise the Coexist CDK app once per test session, exactly as `cdk synth` would (cdk.json context,
cdk-nag packs attached), and hand the stacks and templates to the tests."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# jsii prints a banner per process about Node 20's end of life unless told its major version.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SynthesisedApp:
    app: object
    stacks: object  # stacks.coexist_app.CoexistStacks
    data: object  # assertions.Template
    ingress: object
    outbound: object
    conversations: object
    operations: object
    compliance: object
    console: object
    live: object
    console_edge: object
    outdir: Path

    def logical_id(self, construct) -> str:
        from aws_cdk import Stack

        cfn = construct if construct.node.default_child is None else construct.node.default_child
        return Stack.of(cfn).resolve(cfn.logical_id)


@pytest.fixture(scope="session")
def cdk_context() -> dict:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@pytest.fixture(scope="session")
def synthesised(cdk_context, tmp_path_factory) -> SynthesisedApp:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from layers.build_layer import ensure_all_built
    from stacks.coexist_app import build

    ensure_all_built()  # no-op when build/layer and build/layer-live-auth match their inputs (make layer)
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_context, outdir=str(outdir))
    stacks = build(app)
    # Runs the cdk-nag plugins: any unacknowledged finding raises ValidationFailed here.
    app.synth()
    return SynthesisedApp(app, stacks, *(Template.from_stack(stack) for stack in stacks.all), outdir)


# A second stage with every optional setting: existing secrets, numbers with each transport and bot,
# accounts, Graph API overrides, conversation timings and the Amazon Connect handoff.
SOCIAL_ID = "phone-number-id-0123456789abcdef0123456789abcdef"
PHONE_NUMBERS = [
    "1111111111",  # a plain id: the sender's defaults apply
    {"phone_number_id": "2222222222", "throughput_mps": 20, "transport": "graph"},
    {"phone_number_id": "3333333333", "throughput_mps": 20, "transport": "social_messaging",
     "social_messaging_phone_number_id": SOCIAL_ID},
    {"phone_number_id": "4444444444", "bot": {"provider": "lex", "bot_id": "BOTID12345", "bot_alias_id": "ALIAS12345", "locale_id": "en_US"}},
    {"phone_number_id": "5555555555", "bot": {"provider": "bedrock", "model_id": "anthropic.claude-3-haiku-20240307-v1:0"}},
    {"phone_number_id": "6666666666", "bot": {"provider": "bedrock", "model_id": "eu.amazon.nova-lite-v1:0"},
     "humans": {"provider": "connect", "transcript_messages": 5}},
]
EXISTING = {"app_secret_name": "meta/app-secret", "verify_token_name": "meta/verify-token", "access_token_name": "meta/access-token"}
CONVERSATION = {"takeover_cool_down_s": 900, "accept_timeout_s": 60, "intent_skills": {"billing": "billing"}}
CONSOLE_WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/console/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
CONSOLE_DOMAIN = "console.example.com"
CONSOLE_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
CONNECT = {"instance_id": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "contact_flow_id": "9f8e7d6c-5b4a-3210-fedc-ba9876543210"}


@pytest.fixture(scope="session")
def customised(cdk_context, synthesised, tmp_path_factory):
    """The stacks of that second stage (one more synth, nag included)."""
    from aws_cdk import App

    from stacks.coexist_app import build

    settings = {
        **cdk_context["coexist"],
        "stage": "prod",
        "secrets": EXISTING,
        "phone_numbers": PHONE_NUMBERS,
        "waba_ids": ["9999999999", "8888888888"],
        "graph_api_base_url": "https://graph.example.test",
        "graph_api_version": "v25.0",
        "conversation": CONVERSATION,
        "connect": CONNECT,
        "console_web_acl_arn": CONSOLE_WEB_ACL,
        "console_domain_name": CONSOLE_DOMAIN,
        "console_certificate_arn": CONSOLE_CERTIFICATE,
    }
    app = App(context={**cdk_context, "coexist": settings}, outdir=str(tmp_path_factory.mktemp("cdk.out.customised")))
    stacks = build(app)
    app.synth()  # nag runs here too
    return stacks


def resources_of(template, type_: str) -> dict[str, dict]:
    return template.find_resources(type_)


def statements_of_role(template, role_id: str) -> list[dict]:
    """Every IAM statement attached to a role, with Action always a list."""
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"]
                statements.append({**statement, "Action": [actions] if isinstance(actions, str) else actions})
    return statements


def actions_of_role(template, role_id: str) -> set[str]:
    return {action for s in statements_of_role(template, role_id) for action in s["Action"]}


WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


@pytest.fixture(scope="module")
def cmk(synthesised) -> dict:
    """The data stack's key, as the other stacks import it."""
    return import_of(synthesised, synthesised.stacks.data.key, "Arn")


def import_of(synthesised: SynthesisedApp, construct, attribute: str | None) -> dict:
    """How another stack's template refers to a data-stack value: Fn::ImportValue of its export."""
    logical_id = synthesised.logical_id(construct)
    wanted = {"Fn::GetAtt": [logical_id, attribute]} if attribute else {"Ref": logical_id}
    for output in synthesised.data.to_json()["Outputs"].values():
        if output["Value"] == wanted:
            return {"Fn::ImportValue": output["Export"]["Name"]}
    raise AssertionError(f"data stack exports no {wanted}")
