"""WAFv2 in front of the REST API: AWS managed rules, with body inspection kept off Meta's webhook,
and a per-client rate limit on the agent API."""

from __future__ import annotations

import re

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.constructs.log_groups import encrypted_log_group

RATE_WINDOW_S = 300  # the window api_rate_limit_per_ip counts requests in


def webhook_path_pattern(stage: str) -> str:
    """The URI path of Meta's webhook as WAF sees it. On the execute-api endpoint the path carries
    the stage (`/dev/webhook`); through a custom domain mapped at the root it does not."""
    return f"^(/{re.escape(stage)})?/webhook/?$"


def api_path_pattern(stage: str) -> str:
    """The agent API's paths (`/dev/api/chats/…`), with or without the stage as above."""
    return f"^(/{re.escape(stage)})?/api(/|$)"


def upload_path_pattern(stage: str) -> str:
    """The agent API's two file uploads (a campaign's recipient list, a consent import), whose bodies
    are larger than WAF's 8 KB rule by design; each route checks its own limit (413)."""
    return f"^(/{re.escape(stage)})?/api/(campaigns|consent/imports)/?$"


MAX_INSPECTED_BODY = 8 * 1024  # the common rule set's SizeRestrictions_BODY, kept for every other path


def _path_matches(pattern: str) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            regex_string=pattern,
            # Decoded as API Gateway routes it: an encoded path (/dev/%61pi/...) is still the API.
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="URL_DECODE")],
        )
    )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False  # samples hold bodies
    )


def _managed(name: str, priority: int, scope_down: wafv2.CfnWebACL.StatementProperty | None = None,
             counted: tuple[str, ...] = ()):
    """An AWS managed rule group; the rules named in `counted` only count (another rule does their job)."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS", name=name, scope_down_statement=scope_down,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}))
                    for rule in counted
                ] or None,
            )
        ),
        visibility_config=_visibility(name),
    )


class ApiFirewall(Construct):
    """A regional web ACL on the API stage, logging to an encrypted log group with identifiers redacted.

    The body-inspecting rule groups (common rules, known bad inputs) skip /webhook: its body is a
    customer's free text, signed by Meta, and a message that merely *contains* "<script>" or
    "${jndi:" must still be delivered (a 403 there makes Meta retry for 7 days, then drop it).
    The signature check in the webhook function is that path's protection. (The common rule set
    would also block every body over 8 KB: history chunks reach 3 MB, status batches are large.)
    That 8 KB limit only counts in the rule group; a rule of its own applies it to every path but the
    webhook and the two file uploads (a campaign's list, a consent import), which check their own
    limits; the rest of the group still inspects their first 8 KB.

    Each client IP may make `rate_limit_per_ip` requests to /api per 5 minutes; then it is blocked
    until its rate falls. The webhook is not rate-limited by IP: Meta sends from few addresses.
    """

    @staticmethod
    def _body_size(stage: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
        """The common rule set's 8 KB body limit (counted there), on every path but the webhook and
        the two uploads: a campaign's list or a consent file would otherwise stop at about 150 rows."""
        def not_(pattern: str) -> wafv2.CfnWebACL.StatementProperty:
            return wafv2.CfnWebACL.StatementProperty(not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=_path_matches(pattern)))

        too_big = wafv2.CfnWebACL.StatementProperty(size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")),
            comparison_operator="GT", size=MAX_INSPECTED_BODY,
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
        ))
        return wafv2.CfnWebACL.RuleProperty(
            name="BodySizeOutsideUploads",
            priority=priority,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(and_statement=wafv2.CfnWebACL.AndStatementProperty(statements=[
                not_(webhook_path_pattern(stage)), not_(upload_path_pattern(stage)), too_big,
            ])),
            visibility_config=_visibility("BodySizeOutsideUploads"),
        )

    def __init__(
        self, scope: Construct, id: str, *, stage_arn: str, stage: str, key: kms.IKey, name: str,
        log_retention_days: int, rate_limit_per_ip: int,
    ):
        super().__init__(scope, id)
        not_webhook = wafv2.CfnWebACL.StatementProperty(
            not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=_path_matches(webhook_path_pattern(stage)))
        )
        api_rate = wafv2.CfnWebACL.RuleProperty(
            name="ApiRequestsPerClientIp",
            priority=1,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    aggregate_key_type="IP",
                    limit=rate_limit_per_ip,
                    evaluation_window_sec=RATE_WINDOW_S,
                    scope_down_statement=_path_matches(api_path_pattern(stage)),
                )
            ),
            visibility_config=_visibility("ApiRequestsPerClientIp"),
        )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=name,
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name),
            rules=[
                _managed("AWSManagedRulesAmazonIpReputationList", 0),
                api_rate,
                _managed("AWSManagedRulesCommonRuleSet", 2, not_webhook, counted=("SizeRestrictions_BODY",)),
                _managed("AWSManagedRulesKnownBadInputsRuleSet", 3, not_webhook),
                self._body_size(stage, 4),
            ],
        )
        wafv2.CfnWebACLAssociation(self, "Association", resource_arn=stage_arn, web_acl_arn=self.web_acl.attr_arn)

        # WAF only logs to groups named aws-waf-logs-*, and wants the ARN without the trailing ":*".
        log_group_name = f"aws-waf-logs-{name}"
        self.log_group = encrypted_log_group(
            self, "Logs", key=key, retention_days=log_retention_days, log_group_name=log_group_name
        )
        logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[
                Stack.of(self).format_arn(
                    service="logs", resource="log-group", resource_name=log_group_name,
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            ],
            # Paths carry wa_ids (phone numbers); tokens are credentials. Neither belongs in logs.
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(uri_path={}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(query_string={}),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": "authorization"}),
            ],
        )
        logging.node.add_dependency(self.log_group)
