"""The agent console's web ACL, in us-east-1: AWS WAF accepts a CloudFront distribution's web ACL
(scope CLOUDFRONT) only in that region, whatever region the rest of Coexist runs in.

The console stack finds the ACL's ARN through an SSM parameter of a fixed name in us-east-1
(`CoexistConfig.console_web_acl_parameter`), read at deploy time: CDK's own cross-region references
need stacks bound to an account and region at synth, and Coexist's stacks are environment-agnostic
(synth needs no credentials). Not created when `console_web_acl_arn` names an existing ACL.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs.log_groups import encrypted_log_group
from stacks.constructs.web_acl import RATE_WINDOW_S, _managed, _visibility

EDGE_REGION = "us-east-1"


class ConsoleEdgeStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, **kwargs) -> None:
        super().__init__(scope, id, **kwargs)
        name = f"{config.prefix}-console"
        per_ip = wafv2.CfnWebACL.RuleProperty(
            name="ConsoleRequestsPerClientIp",
            priority=1,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    aggregate_key_type="IP", limit=config.api_rate_limit_per_ip, evaluation_window_sec=RATE_WINDOW_S
                )
            ),
            visibility_config=_visibility("ConsoleRequestsPerClientIp"),
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=name,
            scope="CLOUDFRONT",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name),
            rules=[
                _managed("AWSManagedRulesAmazonIpReputationList", 0),
                per_ip,
                _managed("AWSManagedRulesCommonRuleSet", 2),
                _managed("AWSManagedRulesKnownBadInputsRuleSet", 3),
            ],
        )
        self._log_requests(config, name)
        ssm.StringParameter(
            self, "WebAclArn", parameter_name=config.console_web_acl_parameter, string_value=self.web_acl.attr_arn,
            description="The agent console's CloudFront web ACL, read by the console stack at deploy time",
        )

    def _log_requests(self, config: CoexistConfig, name: str) -> None:
        """WAF logs to a group named aws-waf-logs-*, in this region, encrypted with a key of its own
        (the data stack's key lives in the deployment's region)."""
        key = kms.Key(
            self, "LogsKey", description=f"Coexist {config.stage}: the agent console's WAF logs",
            enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsEncryptsLogGroups",
                principals=[iam.ServicePrincipal(f"logs.{EDGE_REGION}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{EDGE_REGION}:{Aws.ACCOUNT_ID}:log-group:*"
                }},
            )
        )
        log_group_name = f"aws-waf-logs-{name}"
        log_group = encrypted_log_group(
            self, "WafLogs", key=key, retention_days=config.log_retention_days, log_group_name=log_group_name
        )
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[f"arn:{Aws.PARTITION}:logs:{EDGE_REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name}"],
            # The sign-in's code and state come back in the query string; tokens travel in headers.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(query_string={}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "cookie"}),
            ],
        )
        logging.node.add_dependency(log_group)
