"""One Coexist Lambda function: the shared runtime, layer, logging, tracing and a role of its own."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from coexist import resources
from constructs import Construct

from stacks import lambda_runtime
from stacks.constructs import nag
from stacks.constructs.log_groups import encrypted_log_group

RUNTIME = lambda_.Runtime(lambda_runtime.RUNTIME_NAME, lambda_.RuntimeFamily.PYTHON)
ARCHITECTURE = lambda_.Architecture.ARM_64
assert ARCHITECTURE.name == lambda_runtime.ARCHITECTURE  # the layer's wheels are built for this CPU


class ServiceFunction(Construct):
    """`code_dir/handler.py:lambda_handler` with Powertools settings, X-Ray, a KMS-encrypted log group
    and an empty role: every permission is added afterwards by a `grant_*` call on the resource."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        code_dir: Path,
        service: str,
        description: str,
        layer: lambda_.ILayerVersion,
        key: kms.IKey,
        log_retention_days: int,
        environment: dict[str, str],
        timeout: Duration = Duration.seconds(10),
        memory_size: int = 512,
        invoked_by: str,
    ) -> None:
        super().__init__(scope, id)
        self.log_group = encrypted_log_group(self, "Logs", key=key, retention_days=log_retention_days)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Coexist {service} function: only what its grants add",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(str(code_dir), exclude=["__pycache__", "*.pyc", "tests"]),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout,
            memory_size=memory_size,
            environment={
                "POWERTOOLS_SERVICE_NAME": service,
                "POWERTOOLS_METRICS_NAMESPACE": resources.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
        self.log_group.grant_write(self.role)
        self._acknowledge(invoked_by)

    def acknowledge_wildcard(self, finding: str, reason: str) -> None:
        """Waive one wildcard (an action family or an ARN pattern) that a grant_* call put in this
        function's policy; `finding` is cdk-nag's, e.g. `Action::s3:Abort*`."""
        nag.acknowledge(self.role.node.find_child("DefaultPolicy"), f"AwsSolutions-IAM5[{finding}]", reason)

    def _acknowledge(self, invoked_by: str) -> None:
        fn, policy = self.function, self.role.node.find_child("DefaultPolicy")
        nag.acknowledge(
            fn, "AwsSolutions-L1",
            f"Pinned to python{lambda_runtime.PYTHON_VERSION} on purpose: the layer's compiled wheels are built "
            "for exactly this interpreter (stacks/lambda_runtime.py); moving is a deliberate, tested change.",
        )
        nag.acknowledge(
            fn, "HIPAA.Security-LambdaConcurrency",
            "No reserved concurrency: new accounts have a 10-execution pool and reserving would fail the "
            f"deploy or starve the other functions; load is bounded upstream ({invoked_by}).",
        )
        nag.acknowledge(
            fn, "HIPAA.Security-LambdaDLQ",
            f"Never invoked asynchronously ({invoked_by}); failed work is retried by its caller or parked in "
            "the inbound queue's DLQ, so a function DLQ would never receive anything.",
        )
        nag.acknowledge(
            fn, "HIPAA.Security-LambdaInsideVPC",
            "Talks only to IAM-authenticated AWS APIs over TLS and to graph.facebook.com; a VPC would add NAT "
            "and endpoints without reducing exposure, since there are no private resources to reach.",
        )
        nag.acknowledge(
            policy, "HIPAA.Security-IAMNoInlinePolicy",
            "The per-function policy CDK writes from grant_* calls; it belongs to this one role and is "
            "deleted with it, which is the least-privilege outcome the rule aims for.",
        )
        nag.acknowledge(
            policy, "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions.",
        )

