"""The agent console's hosting: bucket, CloudFront distribution, security headers, web ACL.

Deployed before the ingress stack, which takes the console's URL for the REST API's CORS and the
sign-in's callback URLs; the files and their `config.json` are published by the live stack, which
deploys last, once every URL the console needs exists.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import custom_resources as cr
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.console_edge_stack import EDGE_REGION
from stacks.constructs import nag
from stacks.constructs.console_hosting import ConsoleHosting


class ConsoleStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        web_acl_arn = config.console_web_acl_arn or self._edge_web_acl_arn(config)
        self.hosting = ConsoleHosting(self, "Hosting", config=config, web_acl_arn=web_acl_arn)
        self.url = self.hosting.url
        CfnOutput(self, "ConsoleUrl", value=self.url, description="The agent console")

    def _edge_web_acl_arn(self, config: CoexistConfig) -> str:
        """The console edge stack's web ACL, read from its SSM parameter in us-east-1 at deploy time."""
        parameter_arn = self.format_arn(
            service="ssm", region=EDGE_REGION, resource="parameter",
            resource_name=config.console_web_acl_parameter.lstrip("/"),
        )
        lookup = cr.AwsCustomResource(
            self, "EdgeWebAcl",
            on_update=cr.AwsSdkCall(
                service="SSM", action="getParameter", region=EDGE_REGION,
                parameters={"Name": config.console_web_acl_parameter},
                physical_resource_id=cr.PhysicalResourceId.of(config.console_web_acl_parameter),
            ),
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[parameter_arn]),
            install_latest_aws_sdk=False,  # the runtime's SDK: no download at deploy time
        )
        self._acknowledge_lookup_function()
        nag.acknowledge(
            lookup.node.find_child("CustomResourcePolicy"), "HIPAA.Security-IAMNoInlinePolicy",
            "CDK's policy for its deploy-time lookup: ssm:GetParameter on the one web ACL parameter, for that function's role only.",
        )
        return lookup.get_response_field("Parameter.Value")

    def _acknowledge_lookup_function(self) -> None:
        """The function CDK's AwsCustomResource runs (one per stack, created by CDK itself)."""
        function = next(c for c in self.node.children if c.node.id.startswith("AWS679f53fac002430cb0da5b7982bd2287"))
        role = function.node.find_child("ServiceRole")
        nag.acknowledge(
            role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's deploy-time lookup function writes only its own logs with the AWS-maintained basic execution policy.",
        )
        for rule, reason in (
            ("AwsSolutions-L1", "CDK's own custom-resource handler; CDK chooses and updates its Node.js runtime."),
            ("HIPAA.Security-LambdaConcurrency", "Runs once per deploy to read one SSM parameter."),
            ("HIPAA.Security-LambdaDLQ", "Invoked by CloudFormation, which reports a failure as a failed deploy."),
            ("HIPAA.Security-LambdaInsideVPC", "Calls one AWS API (SSM GetParameter in us-east-1); there is nothing private to reach."),
        ):
            nag.acknowledge(function, rule, reason)
