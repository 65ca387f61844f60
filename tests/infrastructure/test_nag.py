"""cdk-nag: both packs run on every stack, nothing is left unacknowledged, and every
acknowledgement names one resource, one rule and a reason."""

from __future__ import annotations

import re

import pytest
from aws_cdk import App, CfnResource, Stack, Validations
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match

from stacks.constructs import nag

pytestmark = pytest.mark.infra

# One rule of one pack, optionally one finding of it: AwsSolutions-IAM5[Action::s3:Abort*]
STACKS = ["data", "ingress", "outbound", "conversations", "operations", "console", "live", "console_edge"]
ONE_RULE = re.compile(r"^(AwsSolutions|HIPAA\.Security)-[A-Za-z0-9]+(\[[^\]]+\])?$")


def _acknowledgements(app) -> list[tuple[object, str, str]]:
    found = []
    for construct in app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry.data.items():
                    found.append((construct, rule, reason))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_no_unacknowledged_nag_finding(synthesised, stack):
    """After synthesis (cross-stack references resolved, as `cdk synth` sees them)."""
    target = getattr(synthesised.stacks, stack)
    for pack in nag.rule_packs(target):
        report = pack.validate_scope(target)
        findings = [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations]
        assert findings == [], f"{pack.readPackName}: {findings}"
        assert report.success


@pytest.mark.parametrize("stack", STACKS)
def test_no_error_or_warning_annotations(synthesised, stack):
    annotations = Annotations.from_stack(getattr(synthesised.stacks, stack))
    assert annotations.find_error("*", Match.string_like_regexp(".*")) == []
    assert annotations.find_warning("*", Match.string_like_regexp(".*")) == []


@pytest.mark.parametrize("stage", ["synthesised", "customised"])  # customised: Connect, bots, existing secrets
def test_acknowledgements_name_one_resource_one_rule_and_why(request, stage):
    built = request.getfixturevalue(stage)
    acknowledgements = _acknowledgements(built.app if stage == "synthesised" else built.data.node.root)
    assert len(acknowledgements) > 10  # the walk does see them (guards against a vacuous pass)
    for construct, rule, reason in acknowledgements:
        where = construct.node.path
        assert CfnResource.is_cfn_resource(construct), f"{rule} acknowledged on {where}, which is not one resource"
        assert not Stack.is_stack(construct)
        bare = rule.split("::", 1)[-1]  # CDK stores "Annotation::<rule>"
        assert ONE_RULE.match(bare), f"{where}: {rule} is not a single rule"
        assert len(reason) >= 40, f"{where}: {rule} has no real reason"


def test_no_acknowledgement_on_a_stack_or_the_app(synthesised):
    for scope in (synthesised.app, *synthesised.stacks.all):
        assert not [e for e in scope.node.metadata if e.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY]


def test_the_packs_do_report_findings_on_a_non_compliant_resource():
    """Control: the same wiring flags an unencrypted, DLQ-less queue, so silence above means compliance."""
    stack = Stack(App(), "Control")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.UNENCRYPTED)
    rules = {v.rule_name for pack in nag.rule_packs(stack) for v in pack.validate_scope(stack).violations}
    assert {"AwsSolutions-SQS3", "AwsSolutions-SQS4"} <= rules


def test_an_acknowledgement_silences_exactly_its_rule_on_its_resource():
    stack = Stack(App(), "Control")
    waived = sqs.Queue(stack, "Waived")
    sqs.Queue(stack, "Other")
    nag.acknowledge(waived, "AwsSolutions-SQS4", "control case: this queue is the one being waived here")
    violations = {v.rule_name: {r.construct_path for r in v.violating_resources} for v in nag.rule_packs(stack)[1].validate_scope(stack).violations}
    assert violations["AwsSolutions-SQS4"] == {"Control/Other/Resource"}
    assert "Control/Waived/Resource" in violations["AwsSolutions-SQS3"]


def test_acknowledging_a_stack_is_refused():
    stack = Stack(App(), "Control")
    with pytest.raises(TypeError):
        nag.acknowledge(stack, "AwsSolutions-SQS4", "a blanket waiver must not be possible through the helper")


# The customised stage names an existing web ACL for the console: it has no console edge stack.
@pytest.mark.parametrize("stack", [s for s in STACKS if s != "console_edge"])
def test_no_unacknowledged_nag_finding_with_every_option_set(customised, stack):
    target = getattr(customised, stack)
    for pack in nag.rule_packs(target):
        report = pack.validate_scope(target)
        assert [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in report.violations] == []


def test_every_finding_is_acknowledged_once_per_resource(synthesised, customised):
    """One reason per rule and resource: a second acknowledgement would make the first one's reason moot."""
    for app in (synthesised.app, customised.data.node.root):
        seen = set()
        for construct, rule, _ in _acknowledgements(app):
            assert (construct.node.path, rule) not in seen, (construct.node.path, rule)
            seen.add((construct.node.path, rule))
