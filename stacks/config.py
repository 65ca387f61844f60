"""Deployment settings, read once from the `coexist` key of the CDK context (cdk.json or `-c`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from constructs import Node

CONTEXT_KEY = "coexist"


@dataclass(frozen=True)
class SecretNames:
    """Names of secrets that already exist in the account. A name left out is created by the data
    stack with a placeholder value the operator replaces (see docs/DEPLOY.md)."""

    app_secret_name: str | None = None  # Meta app secret: verifies X-Hub-Signature-256
    verify_token_name: str | None = None  # the token typed into Meta's webhook form
    access_token_name: str | None = None  # Graph API system-user token, for sending


@dataclass(frozen=True)
class CoexistConfig:
    stage: str = "dev"
    phone_numbers: tuple[str, ...] = ()  # phone_number_ids served by this deployment (informational)
    secrets: SecretNames = field(default_factory=SecretNames)
    alarm_email: str | None = None
    archive_retention_days: int = 365  # Object Lock default retention of every archived webhook body
    archive_lock_mode: str = "GOVERNANCE"  # or COMPLIANCE: not even the root user can shorten it
    deletion_protection: bool = True  # tables; turn off only for throwaway stages
    log_retention_days: int = 365
    api_throttle_rate: int = 50  # requests/s across the stage; Meta peaks at 20 msg/s per coexistence number
    api_throttle_burst: int = 100

    @property
    def prefix(self) -> str:
        return f"coexist-{self.stage}"


    # Stateful resources have fixed names, so the stacks that use them refer to them by name rather
    # than through CloudFormation exports (which would pin the data stack's outputs forever).
    def table_name(self, logical_id: str) -> str:
        return f"{self.prefix}-{logical_id.lower()}"

    def archive_bucket_name(self, account: str, region: str) -> str:
        return f"{self.prefix}-archive-{account}-{region}"  # bucket names are global

    @classmethod
    def from_context(cls, node: Node) -> "CoexistConfig":
        raw = node.try_get_context(CONTEXT_KEY) or {}
        if isinstance(raw, str):  # `cdk -c coexist='{"stage": "prod"}'` passes the JSON as a string
            raw = json.loads(raw)
        raw = dict(raw)
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:  # a typo in cdk.json should fail synth, not silently deploy defaults
            raise ValueError(f"unknown keys in context '{CONTEXT_KEY}': {sorted(unknown)}")
        if "secrets" in raw:
            raw["secrets"] = SecretNames(**raw["secrets"])
        if "phone_numbers" in raw:
            raw["phone_numbers"] = tuple(raw["phone_numbers"])
        config = cls(**raw)
        if config.archive_lock_mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise ValueError("archive_lock_mode must be GOVERNANCE or COMPLIANCE")
        return config
