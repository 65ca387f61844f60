"""One Coexist Lambda function: the shared runtime, layer, logging, tracing and a role of its own."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from coexist.resources import TableSpec
from constructs import Construct

from layers.build_layer import function_asset
from stacks import lambda_runtime
from stacks.config import CoexistConfig
from stacks.constructs import alarms, nag
from stacks.constructs.log_groups import encrypted_log_group

# Waking a parked Step Functions task. IAM has no resource type for these: the task token names the
# task, and only code that was handed the token (by the workflow, through the chats table) can use it.
TASK_TOKEN_ACTIONS = ("states:SendTaskSuccess", "states:SendTaskFailure")
# Also restarting a task's heartbeat: what runs the bot's next turn (coexist.conversation.workflow.BotLoop).
BOT_LOOP_ACTIONS = TASK_TOKEN_ACTIONS + ("states:SendTaskHeartbeat",)

RUNTIME = lambda_.Runtime(lambda_runtime.RUNTIME_NAME, lambda_.RuntimeFamily.PYTHON)
ARCHITECTURE = lambda_.Architecture.ARM_64
assert ARCHITECTURE.name == lambda_runtime.ARCHITECTURE  # the layer's wheels are built for this CPU


class ServiceFunction(Construct):
    """`code_dir/handler.py:lambda_handler` with Powertools settings, X-Ray, a KMS-encrypted log group
    and an empty role: every permission is added afterwards by a `grant_*` call on the resource.

    Its Powertools service name is `coexist-<service>`, the name the handlers give their Logger,
    Tracer and Metrics; EMF puts it in every metric's `service` dimension, which alarms select on.
    """

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
        dead_letter_queue: sqs.IQueue | None = None,
        task_token_actions: tuple[str, ...] = (),
        unscoped_actions: str | None = None,  # other actions IAM has no resource type for, in words
        extra_layers: tuple[lambda_.ILayerVersion, ...] = (),  # what this function alone needs beyond `layer`
        function_name: str | None = None,  # a fixed name, for callers in stacks deployed before it
    ) -> None:
        super().__init__(scope, id)
        self.service_name = f"coexist-{service}"
        self.code_dir = code_dir
        self._acknowledged: set[str] = set()
        self.log_group = encrypted_log_group(self, "Logs", key=key, retention_days=log_retention_days)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{self.service_name} function: only what its grants add",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(str(function_asset(code_dir))),  # its sources and their bytecode
            layers=[layer, *extra_layers],
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout,
            memory_size=memory_size,
            # Asynchronous invocations that still fail after Lambda's two retries are parked here.
            dead_letter_queue=dead_letter_queue,
            environment={
                "POWERTOOLS_SERVICE_NAME": self.service_name,
                "POWERTOOLS_METRICS_NAMESPACE": resources.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
                # X-Ray keeps neither what a function returns nor the exceptions it raises: both
                # can carry message bodies, names and phone numbers.
                "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
                "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            },
        )
        self.log_group.grant_write(self.role)
        if unknown := set(task_token_actions) - set(BOT_LOOP_ACTIONS):
            raise ValueError(f"not task-token actions: {sorted(unknown)}")
        if task_token_actions:
            # Given here, not by a grant_* call later, because the one Resource::* acknowledgement
            # of this policy must name every action that needs it.
            self.role.add_to_principal_policy(iam.PolicyStatement(actions=list(task_token_actions), resources=["*"]))
        self._acknowledge(
            invoked_by, has_dead_letter_queue=dead_letter_queue is not None, task_token_actions=task_token_actions,
            unscoped_actions=unscoped_actions,
        )

    def count_metric(self, metric_name: str) -> cloudwatch.Metric:
        """A count this function emits through Powertools (EMF names the service as the `service`
        dimension), summed over five minutes: what its alarms watch."""
        return cloudwatch.Metric(
            namespace=resources.METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={"service": self.service_name},
            statistic="Sum",
            period=Duration.minutes(5),
        )

    def alarm_on_errors(self, alarm_topic: sns.ITopic) -> cloudwatch.Alarm:
        """Page on any invocation that ends in an unhandled error or a timeout (Lambda's `Errors`)."""
        return alarms.on_any_count(
            self, "ErrorsAlarm",
            metric=self.function.metric_errors(period=Duration.minutes(5), statistic="Sum"),
            alarm_topic=alarm_topic,
            description=f"The {self.service_name} function failed (an unhandled error or a timeout). Its log group "
            "has the error's type; its caller retries or parks the work (see the dead-letter alarms).",
        )

    def acknowledge_wildcard(self, finding: str, reason: str) -> None:
        """Waive one wildcard (an action family or an ARN pattern) that a grant_* call put in this
        function's policy; `finding` is cdk-nag's, e.g. `Action::s3:Abort*`. The first reason given
        for a finding stands; later grants that produce the same wildcard add nothing."""
        if finding in self._acknowledged:
            return
        self._acknowledged.add(finding)
        nag.acknowledge(self.role.node.find_child("DefaultPolicy"), f"AwsSolutions-IAM5[{finding}]", reason)

    def grant_tables(
        self,
        tables: dict[str, dynamodb.ITable],
        config: CoexistConfig,
        *,
        read: tuple[TableSpec, ...] = (),
        read_write: tuple[TableSpec, ...] = (),
    ) -> None:
        """Data access to exactly these tables (of `DomainTables.referenced_by_name`), waiving only
        the wildcards those grants produce: `index/*` of tables with indexes, KMS data-key families."""
        for spec in read:
            tables[spec.env_var].grant_read_data(self.function)
        for spec in read_write:
            tables[spec.env_var].grant_read_write_data(self.function)
            for name, value in config.retention_environment(spec).items():  # its writes set `expires_at`
                self.function.add_environment(name, value)
        for spec in (*read, *read_write):
            if spec.indexes:
                table_arn = f"arn:<AWS::Partition>:dynamodb:<AWS::Region>:<AWS::AccountId>:table/{config.table_name(spec.logical_id)}"
                self.acknowledge_wildcard(
                    f"Resource::{table_arn}/index/*",
                    f"Query on the {spec.logical_id} table's own secondary indexes, which IAM addresses as index/*.",
                )
        if read_write:
            self.acknowledge_data_key_families()

    def acknowledge_data_key_families(self) -> None:
        """The KMS action families that grants for writing to encrypted tables, queues or the
        archive bucket put in the policy; their resource is the one Coexist CMK."""
        for family in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            self.acknowledge_wildcard(
                f"Action::{family}",
                "Data-key actions that writing to CMK-encrypted tables, queues or the archive needs, on the "
                "one Coexist CMK only (the resource is that key's ARN).",
            )

    def grant_secret_read(self, secret: secretsmanager.ISecret, key: kms.IKey) -> None:
        """What `secret.grant_read(fn)` grants, as identity policy only: the L2 would also write this
        role into the CMK's key policy, and the key lives in the data stack (a cross-stack cycle)."""
        # A secret imported by name has no known suffix; IAM matches the real ARN only with "-??????".
        arn = secret.secret_full_arn or f"{secret.secret_arn}-??????"
        iam.Grant.add_to_principal(
            grantee=self.function, actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            resource_arns=[arn],
        )
        iam.Grant.add_to_principal(
            grantee=self.function, actions=["kms:Decrypt"], resource_arns=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{Aws.REGION}.amazonaws.com"}},
        )
        if not secret.secret_full_arn:
            self.acknowledge_wildcard(
                f"Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:{secret.secret_name}-??????",
                "An existing secret named in cdk.json: '-??????' stands for the random suffix Secrets Manager "
                "appended to its ARN, which is unknown at synth time. It matches that one name only.",
            )

    def _acknowledge(
        self, invoked_by: str, *, has_dead_letter_queue: bool, task_token_actions: tuple[str, ...],
        unscoped_actions: str | None,
    ) -> None:
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
        if not has_dead_letter_queue:
            nag.acknowledge(
                fn, "HIPAA.Security-LambdaDLQ",
                f"Never invoked asynchronously ({invoked_by}); failed work is retried by its caller or parked "
                "in its source queue's DLQ, so a function DLQ would never receive anything.",
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
        unscoped = "X-Ray PutTraceSegments/PutTelemetryRecords"
        if task_token_actions:
            unscoped += " and Step Functions " + "/".join(a.split(":")[1] for a in task_token_actions) + (
                " (the task token names the task; the function only holds tokens the conversation workflow "
                "parked on its chats)"
            )
        if unscoped_actions:
            unscoped += f" and {unscoped_actions}"
        nag.acknowledge(policy, "AwsSolutions-IAM5[Resource::*]", f"{unscoped} have no resource-level permissions.")

