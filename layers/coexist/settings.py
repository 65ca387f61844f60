"""Configuration read from the environment once per process.

Deployed, secrets live in Secrets Manager and only their ARNs are in the environment; locally the
values themselves come from environment variables with development defaults.

Fail closed: the development defaults (a known app secret, a shared API token) exist only in local
mode, which is the `local` stage outside Lambda. Anywhere else the API accepts only Cognito and a
function missing a secret's ARN refuses to start (`require_secret_arns`) rather than fall back.
"""

from __future__ import annotations

import os
from functools import lru_cache

from dataclasses import dataclass, replace

from coexist import resources

LOCAL_APP_SECRET = "local-app-secret"
LOCAL_VERIFY_TOKEN = "local-verify-token"
LOCAL_API_TOKEN = "local-dev-token"
LOCAL_AGENT_TOKEN_PREFIX = "local-agent-"  # + an agent_id of the directory: that agent's own token
LOCAL_STAGE = "local"
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
    task_tokens_table: str = "coexist-task-tokens"
    archive_bucket: str = "coexist-archive"
    inbound_queue_url: str = ""
    raw_archive_queue_url: str = ""
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
    conversation_function_name: str = ""
    waba_ids: str = ""  # comma-separated WhatsApp Business Account ids whose templates are synced
    operations_topic_arn: str = ""  # where operators hear of numbers at risk (the app-inactivity watch)
    # Webhook bodies up to this size travel inside the SQS message; larger ones are read back from
    # the archive (SQS caps a message at 256 KiB by default, 1 MiB at most; Meta sends up to 3 MB).
    inline_body_limit: int = 200_000
    app_secret_arn: str | None = None
    app_secret: str = LOCAL_APP_SECRET
    verify_token_arn: str | None = None
    verify_token: str = LOCAL_VERIFY_TOKEN
    # "token": bearer tokens of local mode; "cognito": API Gateway has already checked a JWT.
    # The default is "token" in local mode and "cognito" anywhere else.
    api_auth: str = ""
    api_token: str = LOCAL_API_TOKEN  # local mode: the shared token, an admin
    agent_token_prefix: str = LOCAL_AGENT_TOKEN_PREFIX  # local mode: "<prefix><agent_id>" is that agent
    costs_table: str = "coexist-costs"
    rate_card: str = ""  # a rate card (JSON) replacing the bundled one; empty: coexist/pricing/<resources.RATE_CARD>
    audit_table: str = "coexist-audit"
    audit_bucket: str = "coexist-audit"
    privacy_table: str = "coexist-privacy"
    exports_queue_url: str = ""
    exports_bucket: str = "coexist-exports"
    archive_retention_days: int = 365
    in_lambda: bool = False  # AWS_LAMBDA_FUNCTION_NAME is set: running in AWS Lambda
    event_bus_name: str = ""  # domain events for CRMs (coexist.events); none published without it
    crm_events_include_text: bool = False  # events carry ids only, unless this allows message text
    reminders_table: str = "coexist-reminders"
    reminder_schedule_group: str = "default"
    reminder_target_arn: str = ""
    reminder_scheduler_role_arn: str = ""
    reminder_dlq_arn: str = ""
    idle_schedule_group: str = "default"
    idle_target_arn: str = ""
    idle_scheduler_role_arn: str = ""
    idle_dlq_arn: str = ""
    campaigns_table: str = "coexist-campaigns"
    campaigns_queue_url: str = ""
    campaign_page_size: int = 100  # recipients per page of a campaign
    # Days each table's records are kept ((logical id, days) pairs from <TABLE>_RETENTION_DAYS; a
    # table not named keeps its spec's default, coexist.resources): see retention_days().
    retention: tuple[tuple[str, int], ...] = ()

    def retention_days(self, spec: "resources.TableSpec") -> int:
        """How long `spec`'s records are kept, in days; 0: until erased (coexist.domain.retention)."""
        return dict(self.retention).get(spec.logical_id, spec.retention_days or 0)

    @property
    def local(self) -> bool:
        """Local mode (`make run`, the tests): the only place development defaults are accepted."""
        return self.stage == LOCAL_STAGE and not self.in_lambda

    @property
    def accounts(self) -> frozenset[str]:
        """The WhatsApp Business Accounts this deployment serves (COEXIST_WABA_IDS)."""
        return frozenset(w.strip() for w in self.waba_ids.split(",") if w.strip())

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
            "task_tokens_table": resources.TASK_TOKENS.env_var,
            "archive_bucket": resources.ARCHIVE_BUCKET_ENV,
            "inbound_queue_url": resources.INBOUND_QUEUE_ENV,
            "raw_archive_queue_url": resources.RAW_ARCHIVE_QUEUE_ENV,
            "outbound_queue_url": resources.OUTBOUND_QUEUE_ENV,
            "outbound_dlq_url": resources.OUTBOUND_DLQ_ENV,
            "graph_api_base_url": "GRAPH_API_BASE_URL",
            "graph_api_version": "GRAPH_API_VERSION",
            "access_token_arn": "WHATSAPP_ACCESS_TOKEN_ARN",
            "access_token": "WHATSAPP_ACCESS_TOKEN",
            "numbers_config": "COEXIST_NUMBERS",
            "waba_ids": "COEXIST_WABA_IDS",
            "operations_topic_arn": resources.OPERATIONS_TOPIC_ENV,
            "agents_table": resources.AGENTS.env_var,
            "customers_table": resources.CUSTOMERS.env_var,
            "conversation_state_machine_arn": resources.CONVERSATION_STATE_MACHINE_ENV,
            "conversation_function_name": resources.CONVERSATION_FUNCTION_ENV,
            "inline_body_limit": "INLINE_BODY_LIMIT",
            "app_secret_arn": "WHATSAPP_APP_SECRET_ARN",
            "app_secret": "WHATSAPP_APP_SECRET",
            "verify_token_arn": "WHATSAPP_VERIFY_TOKEN_ARN",
            "verify_token": "WHATSAPP_VERIFY_TOKEN",
            "api_auth": "COEXIST_API_AUTH",
            "api_token": "COEXIST_API_TOKEN",
            "agent_token_prefix": "COEXIST_AGENT_TOKEN_PREFIX",
            "costs_table": resources.COSTS.env_var,
            "rate_card": resources.RATE_CARD_ENV,
            "audit_table": resources.AUDIT.env_var,
            "audit_bucket": resources.AUDIT_BUCKET_ENV,
            "privacy_table": resources.PRIVACY.env_var,
            "exports_queue_url": resources.EXPORTS_QUEUE_ENV,
            "exports_bucket": resources.EXPORTS_BUCKET_ENV,
            "archive_retention_days": resources.ARCHIVE_RETENTION_ENV,
            "event_bus_name": resources.EVENT_BUS_ENV,
            "crm_events_include_text": "CRM_EVENTS_INCLUDE_TEXT",
            "reminders_table": resources.REMINDERS.env_var,
            "reminder_schedule_group": resources.REMINDER_SCHEDULE_GROUP_ENV,
            "reminder_target_arn": resources.REMINDER_TARGET_ARN_ENV,
            "reminder_scheduler_role_arn": resources.REMINDER_SCHEDULER_ROLE_ARN_ENV,
            "reminder_dlq_arn": resources.REMINDER_DLQ_ARN_ENV,
            "idle_schedule_group": resources.IDLE_SCHEDULE_GROUP_ENV,
            "idle_target_arn": resources.IDLE_TARGET_ARN_ENV,
            "idle_scheduler_role_arn": resources.IDLE_SCHEDULER_ROLE_ARN_ENV,
            "idle_dlq_arn": resources.IDLE_DLQ_ARN_ENV,
            "campaigns_table": resources.CAMPAIGNS.env_var,
            "campaigns_queue_url": resources.CAMPAIGNS_QUEUE_ENV,
            "campaign_page_size": resources.CAMPAIGN_PAGE_SIZE_ENV,
        }
        # A plain dataclass, not pydantic: the webhook function's cold start must stay light.
        values: dict = {field: environ[var] for field, var in mapping.items() if environ.get(var)}
        if "inline_body_limit" in values:
            values["inline_body_limit"] = int(values["inline_body_limit"])
        if "archive_retention_days" in values:
            values["archive_retention_days"] = int(values["archive_retention_days"])
        if "crm_events_include_text" in values:
            flag = values["crm_events_include_text"].strip().lower()
            if flag not in ("true", "false"):
                raise ValueError("CRM_EVENTS_INCLUDE_TEXT must be true or false")
            values["crm_events_include_text"] = flag == "true"
        if "campaign_page_size" in values:
            values["campaign_page_size"] = int(values["campaign_page_size"])
            if not 1 <= values["campaign_page_size"] <= 1000:
                raise ValueError("COEXIST_CAMPAIGN_PAGE_SIZE must be between 1 and 1000")
        values["in_lambda"] = bool(environ.get("AWS_LAMBDA_FUNCTION_NAME"))
        values["retention"] = tuple(_retention_from(environ))
        settings = cls(**values)
        if not settings.api_auth:
            settings = replace(settings, api_auth="token" if settings.local else "cognito")
        if not 1_000 <= settings.inline_body_limit <= 240_000:
            raise ValueError("INLINE_BODY_LIMIT must be between 1000 and 240000 bytes (SQS holds 256 KiB)")
        if settings.api_auth not in ("token", "cognito"):
            raise ValueError("COEXIST_API_AUTH must be 'token' or 'cognito'")
        if settings.api_auth == "token" and not settings.local:
            raise ValueError(
                f"COEXIST_API_AUTH=token is local mode's (stage 'local', outside Lambda); stage "
                f"{settings.stage!r}{' in Lambda' if settings.in_lambda else ''} accepts only 'cognito'"
            )
        if settings.api_auth == "token" and not settings.agent_token_prefix:
            raise ValueError("COEXIST_AGENT_TOKEN_PREFIX must not be empty")
        return settings

    def require_secret_arns(self, *names: str) -> None:
        """Stop a deployed function at start when a secret it needs has no ARN: it would otherwise
        run with a development default (a known app secret lets anyone forge webhooks)."""
        if self.local:
            return
        missing = [f"{name.upper()}_ARN" for name in names if not getattr(self, f"{name}_arn")]
        if missing:
            raise RuntimeError(f"missing secret ARNs outside local mode: {', '.join('WHATSAPP_' + m for m in missing)}")

    def secret(self, name: str) -> str:
        """The app secret or verify token: from Secrets Manager when an ARN is configured."""
        arn = getattr(self, f"{name}_arn")
        if arn:
            from aws_lambda_powertools.utilities import parameters

            return parameters.get_secret(arn, max_age=SECRET_CACHE_SECONDS)
        self.require_secret_arns(name)  # never a development default outside local mode
        return getattr(self, name)


MAX_RETENTION_DAYS = 36_500


def _retention_from(environ) -> list[tuple[str, int]]:
    found = []
    for spec in resources.TABLES:
        raw = environ.get(spec.retention_env) if spec.retention_days is not None else None
        if not raw:
            continue
        try:
            days = int(raw)
        except ValueError:
            days = -1
        if not 0 <= days <= MAX_RETENTION_DAYS:
            raise ValueError(f"{spec.retention_env} must be a whole number of days from 0 (kept until erased) to {MAX_RETENTION_DAYS}")
        found.append((spec.logical_id, days))
    return found


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_environ()
