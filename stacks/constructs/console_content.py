"""The console's files, published into its bucket at deploy time with the `config.json` that tells
it where everything is: the API, the live channel, the Cognito sign-in and its app client.

`BucketDeployment` runs as a Lambda-backed custom resource: the folder is zipped into an asset at
synth (no Docker), and `config.json` is rendered at deploy time, once the URLs exist. The folder's
own `config.json` (local mode's) is left out.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.constructs import nag

CONSOLE_DIR = Path(__file__).resolve().parents[2] / "console"


def deployed_config(
    *, region: str, api_url: str, live_url: str, sign_in_url: str, client_id: str, numbers: list[str]
) -> dict:
    """The console's config.json when deployed (console/js/auth.js and live.js read it)."""
    return {
        "auth": "cognito",
        "region": region,
        "api": api_url,
        "cognito": {"domain": sign_in_url, "client_id": client_id},
        "live": {"kind": "websocket", "url": live_url},
        "numbers": numbers,
    }


class ConsoleContent(Construct):
    def __init__(
        self, scope: Construct, id: str, *, bucket: s3.IBucket, distribution: cloudfront.IDistribution, config: dict,
        bucket_finding_name: str,
    ) -> None:
        super().__init__(scope, id)
        self.deployment = s3deploy.BucketDeployment(
            self, "Files",
            sources=[
                s3deploy.Source.asset(str(CONSOLE_DIR), exclude=["config.json", ".*"]),
                s3deploy.Source.json_data("config.json", config),
            ],
            destination_bucket=bucket,
            distribution=distribution,
            distribution_paths=["/*"],  # a deploy replaces the app as a whole
            prune=True,
            memory_limit=256,
        )
        self._acknowledge_handler(bucket_finding_name)

    def _acknowledge_handler(self, bucket_name: str) -> None:
        """The function CDK's BucketDeployment runs (one per stack, created by CDK itself)."""
        stack = Stack.of(self)
        function = next(c for c in stack.node.children if c.node.id.startswith("Custom::CDKBucketDeployment"))
        role = function.node.find_child("ServiceRole")
        nag.acknowledge(
            role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's deploy-time copy function writes only its own logs with the AWS-maintained basic execution policy.",
        )
        policy = role.node.find_child("DefaultPolicy")
        for finding, reason in (
            ("Action::s3:GetBucket*", "From grant_read on the CDK asset bucket and the console bucket: read the zip, list the files."),
            ("Action::s3:GetObject*", "From grant_read: read the console's zip asset and the files it replaces."),
            ("Action::s3:List*", "From grant_read: list the console bucket to prune files a deploy removed."),
            ("Action::s3:DeleteObject*", "From grant_read_write on the console bucket: prune files a deploy removed."),
            ("Action::s3:Abort*", "From grant_read_write: abort its own multipart uploads into the console bucket."),
            ("Action::kms:GenerateDataKey*", "Write the console's files under the console bucket's key (that key only)."),
            ("Action::kms:ReEncrypt*", "From the bucket grant on the console bucket's key (that key only)."),
            (f"Resource::arn:<AWS::Partition>:s3:::{bucket_name}/*", "Every file of the console bucket: a deploy replaces the app."),
            ("Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
             "CDK's asset bucket, where the console's zip is uploaded under a content hash (read only)."),
            ("Resource::*", "CloudFront CreateInvalidation/GetInvalidation, which CDK grants without naming the distribution."),
        ):
            nag.acknowledge(policy, f"AwsSolutions-IAM5[{finding}]", reason)
        for rule, reason in (
            ("AwsSolutions-L1", "CDK's own custom-resource handler; CDK chooses and updates its runtime."),
            ("HIPAA.Security-LambdaConcurrency", "Runs once per deploy to copy the console's files."),
            ("HIPAA.Security-LambdaDLQ", "Invoked by CloudFormation, which reports a failure as a failed deploy."),
            ("HIPAA.Security-LambdaInsideVPC", "Calls S3 and CloudFront APIs only; there is nothing private to reach."),
            ("HIPAA.Security-IAMNoInlinePolicy", "The policy CDK writes from the deployment's grants for this one role."),
        ):
            target = policy if rule == "HIPAA.Security-IAMNoInlinePolicy" else function
            nag.acknowledge(target, rule, reason)
