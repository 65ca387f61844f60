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

    from layers.build_layer import ensure_built
    from stacks.coexist_app import build

    ensure_built()  # no-op when build/layer matches its inputs (make layer)
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context=cdk_context, outdir=str(outdir))
    stacks = build(app)
    # Runs the cdk-nag plugins: any unacknowledged finding raises ValidationFailed here.
    app.synth()
    return SynthesisedApp(
        app, stacks, *(Template.from_stack(stack) for stack in (stacks.data, stacks.ingress, stacks.outbound)), outdir
    )


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


def import_of(synthesised: SynthesisedApp, construct, attribute: str | None) -> dict:
    """How another stack's template refers to a data-stack value: Fn::ImportValue of its export."""
    logical_id = synthesised.logical_id(construct)
    wanted = {"Fn::GetAtt": [logical_id, attribute]} if attribute else {"Ref": logical_id}
    for output in synthesised.data.to_json()["Outputs"].values():
        if output["Value"] == wanted:
            return {"Fn::ImportValue": output["Export"]["Name"]}
    raise AssertionError(f"data stack exports no {wanted}")
