"""CloudWatch log groups the Coexist way: encrypted with the CMK, with a retention period."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

# CloudWatch accepts only these retention periods (days), by their CDK names.
_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
    1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS",
}


def retention(days: int) -> logs.RetentionDays:
    """The shortest allowed retention that keeps logs at least `days` (ten years at most)."""
    chosen = next((d for d in sorted(_RETENTION) if d >= days), max(_RETENTION))
    return getattr(logs.RetentionDays, _RETENTION[chosen])


def encrypted_log_group(
    scope: Construct, id: str, *, key: kms.IKey, retention_days: int, log_group_name: str | None = None
) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        id,
        log_group_name=log_group_name,
        encryption_key=key,
        retention=retention(retention_days),
        removal_policy=RemovalPolicy.RETAIN,  # audit evidence outlives a stack deletion
    )
