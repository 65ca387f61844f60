"""Configuration read from the environment once per process.

Deployed, secrets live in Secrets Manager and only their ARNs are in the environment; locally the
values themselves come from environment variables with development defaults.
"""

from __future__ import annotations

import os
from functools import lru_cache

from dataclasses import dataclass

from coexist import resources

LOCAL_APP_SECRET = "local-app-secret"
LOCAL_VERIFY_TOKEN = "local-verify-token"
LOCAL_API_TOKEN = "local-dev-token"
SECRET_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Settings:
    stage: str = "local"
    numbers_table: str = "coexist-numbers"
    accounts_table: str = "coexist-accounts"
    chats_table: str = "coexist-chats"
    messages_table: str = "coexist-messages"
    contacts_table: str = "coexist-contacts"
    templates_table: str = "coexist-templates"
    throttle_table: str = "coexist-throttle"
    archive_bucket: str = "coexist-archive"
    inbound_queue_url: str = ""
    outbound_queue_url: str = ""
    outbound_dlq_url: str = ""
    # The Cloud API: base URL and version from config so a new version is a setting, not a release.
    graph_api_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v24.0"
    access_token_arn: str | None = None
    access_token: str = ""
    # Per-number settings as JSON: {"<phone_number_id>": {"throughput_mps": 20, "transport":
    # "graph" | "social_messaging", "social_messaging_phone_number_id": "phone-number-id-…"}}
    numbers_config: str = "{}"
    agents_table: str = "coexist-agents"
    customers_table: str = "coexist-customers"
    conversation_state_machine_arn: str = ""
    waba_ids: str = ""  # comma-separated WhatsApp Business Account ids whose templates are synced
    # Webhook bodies up to this size travel inside the SQS message; larger ones are read back from
    # the archive (SQS caps a message at 256 KiB by default, 1 MiB at most; Meta sends up to 3 MB).
    inline_body_limit: int = 200_000
    app_secret_arn: str | None = None
    app_secret: str = LOCAL_APP_SECRET
    verify_token_arn: str | None = None
    verify_token: str = LOCAL_VERIFY_TOKEN
    # "token": a shared bearer token (local mode); "cognito": API Gateway has already checked a JWT.
    api_auth: str = "token"
    api_token: str = LOCAL_API_TOKEN

    @classmethod
    def from_environ(cls, environ: dict[str, str] | os._Environ = os.environ) -> "Settings":
        mapping = {
            "stage": "COEXIST_STAGE",
            "numbers_table": resources.NUMBERS.env_var,
            "accounts_table": resources.ACCOUNTS.env_var,
            "chats_table": resources.CHATS.env_var,
            "messages_table": resources.MESSAGES.env_var,
            "contacts_table": resources.CONTACTS.env_var,
            "templates_table": resources.TEMPLATES.env_var,
            "throttle_table": resources.THROTTLE.env_var,
            "archive_bucket": resources.ARCHIVE_BUCKET_ENV,
            "inbound_queue_url": resources.INBOUND_QUEUE_ENV,
            "outbound_queue_url": resources.OUTBOUND_QUEUE_ENV,
            "outbound_dlq_url": resources.OUTBOUND_DLQ_ENV,
            "graph_api_base_url": "GRAPH_API_BASE_URL",
            "graph_api_version": "GRAPH_API_VERSION",
            "access_token_arn": "WHATSAPP_ACCESS_TOKEN_ARN",
            "access_token": "WHATSAPP_ACCESS_TOKEN",
            "numbers_config": "COEXIST_NUMBERS",
            "waba_ids": "COEXIST_WABA_IDS",
            "agents_table": resources.AGENTS.env_var,
            "customers_table": resources.CUSTOMERS.env_var,
            "conversation_state_machine_arn": resources.CONVERSATION_STATE_MACHINE_ENV,
            "inline_body_limit": "INLINE_BODY_LIMIT",
            "app_secret_arn": "WHATSAPP_APP_SECRET_ARN",
            "app_secret": "WHATSAPP_APP_SECRET",
            "verify_token_arn": "WHATSAPP_VERIFY_TOKEN_ARN",
            "verify_token": "WHATSAPP_VERIFY_TOKEN",
            "api_auth": "COEXIST_API_AUTH",
            "api_token": "COEXIST_API_TOKEN",
        }
        # A plain dataclass, not pydantic: the webhook function's cold start must stay light.
        values: dict = {field: environ[var] for field, var in mapping.items() if environ.get(var)}
        if "inline_body_limit" in values:
            values["inline_body_limit"] = int(values["inline_body_limit"])
        settings = cls(**values)
        if not 1_000 <= settings.inline_body_limit <= 240_000:
            raise ValueError("INLINE_BODY_LIMIT must be between 1000 and 240000 bytes (SQS holds 256 KiB)")
        if settings.api_auth not in ("token", "cognito"):
            raise ValueError("COEXIST_API_AUTH must be 'token' or 'cognito'")
        return settings

    def secret(self, name: str) -> str:
        """The app secret or verify token: from Secrets Manager when an ARN is configured."""
        arn = getattr(self, f"{name}_arn")
        if arn:
            from aws_lambda_powertools.utilities import parameters

            return parameters.get_secret(arn, max_age=SECRET_CACHE_SECONDS)
        return getattr(self, name)


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_environ()
