"""cdk-nag: the two rule packs every Coexist stack is checked against, and the one way to waive a rule.

A waiver (v3 "acknowledgement") names exactly one CloudFormation resource, one rule (or one finding
of a rule, e.g. `AwsSolutions-IAM5[Resource::*]`) and why. It is never put on a stack or a
higher-level construct, where it would silently cover resources added later; the infrastructure
tests enforce that.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks
from constructs import IConstruct


def rule_packs(scope: IConstruct) -> list:
    return [HIPAASecurityChecks(scope), AwsSolutionsChecks(scope)]


def check(stack: Stack) -> None:
    """Run both packs at synthesis; an unacknowledged finding fails `cdk synth` and the tests."""
    Validations.of(stack).add_plugins(*rule_packs(stack))


def acknowledge(resource: IConstruct, rule: str, reason: str) -> None:
    """Waive `rule` on the single CloudFormation resource behind `resource`, for `reason`."""
    cfn = resource if CfnResource.is_cfn_resource(resource) else resource.node.default_child
    if cfn is None or not CfnResource.is_cfn_resource(cfn):
        raise TypeError(f"{resource.node.path} is not one CloudFormation resource")
    Validations.of(cfn).acknowledge(Acknowledgment(id=rule, reason=reason))
