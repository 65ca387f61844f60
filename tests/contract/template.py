"""The synthesized CloudFormation templates as a deployment would make them concrete.

Every intrinsic (`Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, `Fn::ImportValue`, …) is resolved to
the string CloudFormation would produce in one fixed account and region, the emulator's, so that
ARNs recorded from the emulated account compare with the policies' ARNs directly. A resource
without an explicit name gets its logical id as its physical name: what matters is only that the
policy and the environment variable that point at the same resource resolve to the same string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACCOUNT = "123456789012"  # moto's default account, the one the emulated resources live in
REGION = "us-east-1"
PARTITION = "aws"

PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "stack",
}

# The property that names a resource, where the template sets one.
NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SecretsManager::Secret": "Name",
}


class Unresolvable(ValueError):
    """An intrinsic this resolver does not model (the contract test must then learn it)."""


@dataclass
class Templates:
    """All stacks of one app, resolvable together (exports are imported across stacks)."""

    by_stack: dict[str, dict]

    def __post_init__(self) -> None:
        self._exports: dict[str, tuple[str, object]] = {}
        for stack, template in self.by_stack.items():
            for output in template.get("Outputs", {}).values():
                if "Export" in output:
                    self._exports[self.resolve(stack, output["Export"]["Name"])] = (stack, output["Value"])

    def resources(self, stack: str) -> dict[str, dict]:
        return self.by_stack[stack].get("Resources", {})

    def physical_name(self, stack: str, logical_id: str) -> str:
        resource = self.resources(stack)[logical_id]
        name = resource.get("Properties", {}).get(NAME_PROPERTY.get(resource["Type"], ""))
        return self.resolve(stack, name) if name is not None else logical_id

    def ref(self, stack: str, logical_id: str) -> str:
        if logical_id in PSEUDO:
            return PSEUDO[logical_id]
        resources = self.resources(stack)
        if logical_id not in resources:
            raise Unresolvable(f"Ref to unknown {logical_id} in {stack}")
        type_ = resources[logical_id]["Type"]
        name = self.physical_name(stack, logical_id)
        if type_ == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
        if type_ in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic"):
            return self.get_att(stack, logical_id, "Arn")
        if type_ == "AWS::SecretsManager::Secret":
            return f"arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf"
        return name

    def get_att(self, stack: str, logical_id: str, attribute: str) -> str:
        type_ = self.resources(stack)[logical_id]["Type"]
        name = self.physical_name(stack, logical_id)
        arns = {
            "AWS::DynamoDB::Table": f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::SQS::Queue": f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::S3::Bucket": f"arn:{PARTITION}:s3:::{name}",
            "AWS::StepFunctions::StateMachine": f"arn:{PARTITION}:states:{REGION}:{ACCOUNT}:stateMachine:{name}",
            "AWS::SNS::Topic": f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::KMS::Key": f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/{name}",
            "AWS::Lambda::Function": f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::IAM::Role": f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        }
        if type_ == "AWS::SecretsManager::Secret" and attribute == "Arn":
            return self.ref(stack, logical_id)
        if attribute in ("Arn", "TopicArn", "StateMachineArn") and type_ in arns:
            return arns[type_]
        if attribute in ("QueueName", "Name", "TopicName"):
            return name
        if attribute == "QueueUrl":
            return self.ref(stack, logical_id)
        return f"{name}.{attribute}"  # an attribute no policy or environment here depends on

    def resolve(self, stack: str, value):
        """`value` with every intrinsic replaced by the string it stands for."""
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        if isinstance(value, list):
            return [self.resolve(stack, v) for v in value]
        if not isinstance(value, dict):
            raise Unresolvable(repr(value))
        if len(value) != 1 or not next(iter(value)).startswith(("Ref", "Fn::")):
            return {k: self.resolve(stack, v) for k, v in value.items()}
        (function, argument), = value.items()
        if function == "Ref":
            return self.ref(stack, argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(stack, logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(p) for p in self.resolve(stack, parts))
        if function == "Fn::Select":
            index, items = argument
            return self.resolve(stack, items)[int(self.resolve(stack, index))]
        if function == "Fn::Split":
            separator, text = argument
            return self.resolve(stack, text).split(separator)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            variables = {k: self.resolve(stack, v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_variable(stack, m.group(1), variables), text)
        if function == "Fn::ImportValue":
            name = self.resolve(stack, argument)
            if name not in self._exports:
                raise Unresolvable(f"no stack exports {name}")
            exporting_stack, exported = self._exports[name]
            return self.resolve(exporting_stack, exported)
        raise Unresolvable(function)

    def _sub_variable(self, stack: str, name: str, variables: dict) -> str:
        if name in variables:
            return str(variables[name])
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return self.get_att(stack, logical_id, attribute)
        return self.ref(stack, name)
