"""Check recorded AWS calls against the deployed functions' roles.

A recorded call names the function (its `functions/<name>` folder), the IAM action, the resource
ARN in the emulated account and the environment variables that named that resource. It is
translated into the deployed account through those variables (the function's environment in the
template names the deployed resource) and checked against every statement attached to the
function's role. Writing to a KMS-encrypted queue, topic or bucket also makes the service use the
key on the caller's behalf, which the caller's role must allow too (`kms:ViaService` set).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.contract.calls import arn_tokens, resource_key
from tests.contract.policy import Request, is_allowed
from tests.contract.template import ACCOUNT, REGION, Templates

# What the service does with the resource's KMS key for the caller, per action.
IMPLIED_KMS = {
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:SendMessageBatch": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:ReceiveMessage": ("kms:Decrypt",),
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "s3:PutObject": ("kms:GenerateDataKey",),
    "s3:GetObject": ("kms:Decrypt",),
}


@dataclass
class DeployedFunction:
    code: str  # the functions/<code> folder it runs
    stack: str
    logical_id: str
    environment: dict[str, str]
    statements: list[dict]


@dataclass(frozen=True)
class Violation:
    function: str
    action: str
    resource: str
    why: str = "not allowed by its role"

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource}: {self.why}"


@dataclass
class Deployment:
    templates: Templates
    functions: dict[str, DeployedFunction]
    keys_by_resource: dict[str, str] = field(default_factory=dict)  # queue/topic/bucket ARN -> key ARN


def _statements(document: dict) -> list[dict]:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def deployment(templates: Templates, functions: list[tuple[str, str, str]]) -> Deployment:
    """`functions`: (code folder, stack, function logical id) of every function the app deploys."""
    deployed = {}
    for code, stack, logical_id in functions:
        props = templates.resources(stack)[logical_id]["Properties"]
        role_name = templates.resolve(stack, props["Role"]).rsplit("/", 1)[-1]
        statements = []
        for other in templates.by_stack:
            for resource_id, resource in templates.resources(other).items():
                properties = resource.get("Properties", {})
                if resource["Type"] == "AWS::IAM::Policy" and role_name in templates.resolve(other, properties.get("Roles", [])):
                    statements += _statements(templates.resolve(other, properties["PolicyDocument"]))
                if resource["Type"] == "AWS::IAM::Role" and templates.physical_name(other, resource_id) == role_name:
                    for inline in properties.get("Policies", []):
                        statements += _statements(templates.resolve(other, inline["PolicyDocument"]))
        environment = templates.resolve(stack, props.get("Environment", {}).get("Variables", {}))
        if code in deployed:
            raise ValueError(f"two deployed functions run functions/{code}")
        deployed[code] = DeployedFunction(code, stack, logical_id, environment, statements)
    return Deployment(templates, deployed, _keys_by_resource(templates))


def _keys_by_resource(templates: Templates) -> dict[str, str]:
    keys = {}
    for stack in templates.by_stack:
        for logical_id, resource in templates.resources(stack).items():
            props = resource.get("Properties", {})
            key = None
            if resource["Type"] in ("AWS::SQS::Queue", "AWS::SNS::Topic"):
                key = props.get("KmsMasterKeyId")
            elif resource["Type"] == "AWS::S3::Bucket":
                rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
                key = next((r["ServerSideEncryptionByDefault"].get("KMSMasterKeyID") for r in rules), None)
            if key is None:
                continue
            key = templates.resolve(stack, key)
            if key.startswith("arn:"):  # alias/aws/... keys are AWS managed: no grant needed
                keys[templates.get_att(stack, logical_id, "Arn")] = key
    return keys


def _in_fixed_account(arn: str) -> str:
    """The emulated ARN with the region and account the templates are resolved with."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return arn
    parts[3] = REGION if parts[3] else ""
    parts[4] = ACCOUNT if parts[4] else ""
    return ":".join(parts)


def _replace_token(arn: str, old: str, new: str) -> str:
    head, resource = arn.split(":", 5)[:5], arn.split(":", 5)[5]
    pieces = re.split(r"([:/])", resource)
    return ":".join(head) + ":" + "".join(new if piece == old else piece for piece in pieces)


def translate(record: dict, function: DeployedFunction) -> tuple[str, list[str]]:
    """The recorded resource as the deployed function would name it, and the variables it
    depends on that the deployed function is not given."""
    resource = _in_fixed_account(record["resource"]) if record["resource"] != "*" else "*"
    missing = []
    for variable, emulated in sorted(record.get("bindings", {}).items()):
        if variable not in function.environment:
            missing.append(variable)
            continue
        if emulated in arn_tokens(resource):
            resource = _replace_token(resource, emulated, resource_key(str(function.environment[variable])))
    return resource, missing


def _kms_key_for(deployment: Deployment, resource: str) -> str | None:
    if resource.startswith("arn:aws:s3:::"):
        resource = resource.split("/", 1)[0]
    return deployment.keys_by_resource.get(resource)


def check(records: list[dict], deployment: Deployment) -> list[Violation]:
    violations: set[Violation] = set()
    for record in records:
        function = deployment.functions.get(record["function"])
        if function is None:
            violations.add(Violation(record["function"], record["action"], record["resource"], "no deployed function runs this code"))
            continue
        resource, missing = translate(record, function)
        # Only a variable the binding actually needed matters: another variable with the same value
        # (a table named twice) may be absent as long as one present one translated the name.
        if missing and len(missing) == len(record.get("bindings", {})):
            violations.add(Violation(function.code, record["action"], resource,
                                     f"the resource is named by {', '.join(missing)}, which its deployed environment does not set"))
            continue
        if not is_allowed(function.statements, Request(record["action"], resource, record.get("context", {}))):
            violations.add(Violation(function.code, record["action"], resource))
            continue
        key = _kms_key_for(deployment, resource) if record["action"] in IMPLIED_KMS else None
        if key:
            service = record["action"].split(":")[0]
            via = {"kms:ViaService": f"{service}.{REGION}.amazonaws.com"}
            for kms_action in IMPLIED_KMS[record["action"]]:
                if not is_allowed(function.statements, Request(kms_action, key, via)):
                    violations.add(Violation(function.code, kms_action, key, f"needed by {record['action']} on {resource}"))
    return sorted(violations, key=str)
