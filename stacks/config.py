"""Deployment settings, read once from the `coexist` key of the CDK context (cdk.json or `-c`)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields

from coexist.conversation.settings import ConversationSettings
from coexist.domain.costs import RateCard
from coexist.resources import RATE_CARD_ENV
from coexist.number_config import SOCIAL_MESSAGING_ID, NumberConfig, Transport, numbers_to_json
from constructs import Node

CONTEXT_KEY = "coexist"


@dataclass(frozen=True)
class PhoneNumber(NumberConfig):
    """One business number this deployment sends from: the runtime's own `NumberConfig`
    (layers/coexist/number_config.py), with what only a deployment can check."""

    @classmethod
    def parse(cls, entry: str | dict, phone_number_id: str | None = None) -> "PhoneNumber":
        number = super().parse(entry, phone_number_id)
        number.bot_settings()  # the runtime's own validation: a wrong bot fails the synth, not a turn
        # IAM grants and the streaming topic exist for the configured instance only.
        if overrides := sorted({"instance_id", "contact_flow_id", "streaming_topic_arn"} & set(number.humans or {})):
            raise ValueError(f"phone_numbers humans of {number.phone_number_id}: {overrides} come from the `connect` setting")
        return number

    def social_messaging_resource(self) -> str | None:
        """The IAM resource name of the End User Messaging Social number: `phone-number-id/<hex>`
        (the ARN drops the `phone-number-id-` prefix of the id), or the ARN as configured."""
        if self.transport != Transport.SOCIAL_MESSAGING:
            return None
        origination = self.social_messaging_phone_number_id or ""
        match = SOCIAL_MESSAGING_ID.match(origination)
        return f"phone-number-id/{match.group(1)}" if match else origination


@dataclass(frozen=True)
class SecretNames:
    """Names of secrets that already exist in the account. A name left out is created by the data
    stack with a placeholder value the operator replaces (see docs/DEPLOY.md)."""

    app_secret_name: str | None = None  # Meta app secret: verifies X-Hub-Signature-256
    verify_token_name: str | None = None  # the token typed into Meta's webhook form
    access_token_name: str | None = None  # Graph API system-user token, for sending


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class ConnectSettings:
    """Hand conversations to an Amazon Connect instance (stacks/constructs/connect_handoff.py)."""

    instance_id: str  # the last part of the instance's ARN
    contact_flow_id: str  # the flow new chats start in (Routing > Flows > additional information)

    @classmethod
    def parse(cls, raw: dict) -> "ConnectSettings":
        if not isinstance(raw, dict):
            raise ValueError("connect must be an object with instance_id and contact_flow_id")
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown keys in connect: {sorted(unknown)}")
        settings = cls(**{f.name: str(raw.get(f.name) or "").strip().lower() for f in fields(cls)})
        for name in ("instance_id", "contact_flow_id"):
            if not _UUID.match(getattr(settings, name)):
                raise ValueError(f"connect {name} must be the id (a UUID) shown in the Amazon Connect console")
        return settings


# ConversationSettings field types as written in its annotations, and what cdk.json may give for them.
_CONVERSATION_TYPES = {"int": int, "bool": bool, "str": str, "str | None": (str, type(None)), "dict": dict}


def conversation_settings(raw: dict) -> ConversationSettings:
    """COEXIST_CONVERSATION, checked at synth with the runtime's own dataclass (unknown keys fail
    there), plus the types and ranges the dataclass itself does not check."""
    if not isinstance(raw, dict):
        raise ValueError("conversation must be an object (see coexist.conversation.settings)")
    try:
        settings = ConversationSettings.from_environ({"COEXIST_CONVERSATION": json.dumps(raw)})
    except (TypeError, ValueError) as error:
        raise ValueError(f"conversation: {error}") from None
    for f in fields(ConversationSettings):
        value, expected = getattr(settings, f.name), _CONVERSATION_TYPES.get(str(f.type))
        if expected is None:  # a type this check does not know yet: the runtime validates it
            continue
        wrong_bool = isinstance(value, bool) and expected is int  # True is an int to Python, not to us
        if wrong_bool or not isinstance(value, expected):
            raise ValueError(f"conversation {f.name} must be of type {f.type}, not {type(value).__name__}")
        if expected is int and value < (1 if f.name == "max_assign_attempts" else 0):
            raise ValueError(f"conversation {f.name} must not be negative")
    if settings.unassigned_template is not None and not re.fullmatch(r"[^:]+:[^:]+", settings.unassigned_template):
        raise ValueError("conversation unassigned_template looks like 'name:language'")
    if settings.window_warning_template is not None and not re.fullmatch(r"[^:]+:[^:]+", settings.window_warning_template):
        raise ValueError("conversation window_warning_template looks like 'name:language'")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in settings.intent_skills.items()):
        raise ValueError("conversation intent_skills maps intent names to skill names (strings)")
    return settings


@dataclass(frozen=True)
class CoexistConfig:
    stage: str = "dev"
    # The numbers this deployment sends from: phone_number_id strings or PhoneNumber objects.
    phone_numbers: tuple[PhoneNumber, ...] = ()
    waba_ids: tuple[str, ...] = ()  # WhatsApp Business Accounts whose templates are synced
    graph_api_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = "v24.0"
    secrets: SecretNames = field(default_factory=SecretNames)
    alarm_email: str | None = None
    archive_retention_days: int = 365  # Object Lock default retention of every archived webhook body
    archive_lock_mode: str = "GOVERNANCE"  # or COMPLIANCE: not even the root user can shorten it
    deletion_protection: bool = True  # tables; turn off only for throwaway stages
    # The audit trail's copy (S3 Object Lock, always COMPLIANCE): six years, HIPAA's documentation retention.
    audit_retention_days: int = 6 * 365
    log_retention_days: int = 365
    api_throttle_rate: int = 50  # requests/s to the agent API (/api), across all callers
    api_throttle_burst: int = 100
    # Meta's webhook: inbound messages, echoes, history chunks and a status per sent message arrive
    # in bursts (80 msg/s sent per number means 160+ status callbacks/s); its own limit, so an agent
    # console hammering /api can never make API Gateway refuse Meta.
    webhook_throttle_rate: int = 200
    webhook_throttle_burst: int = 400
    api_rate_limit_per_ip: int = 3000  # WAF: /api requests per client IP per 5 minutes, then blocked
    # Concurrent ingest batches at most: bounds what ingest takes from the account's Lambda
    # concurrency, so a backlog on the queue cannot starve the webhook and the API.
    ingest_max_concurrency: int = 5
    # The conversation workflow's timings and texts (coexist.conversation.settings), as COEXIST_CONVERSATION.
    conversation: dict = field(default_factory=dict)
    connect: ConnectSettings | None = None  # Amazon Connect handoff, only when configured
    # A rate card replacing the bundled one (coexist/pricing/), as a JSON object of the same shape:
    # the deployment's own prices (a BSP's, a newer Meta card). Checked at synth.
    rate_card: dict | None = None
    # Domain events for CRMs (docs/EVENTS.md): message text only when this allows it; a CRM's webhook
    # (https URL, and the ARN of a secret holding its token, sent in `crm_webhook_header`) gets every
    # event through an EventBridge API destination, only when both are set.
    crm_events_include_text: bool = False
    crm_webhook_url: str | None = None
    crm_webhook_secret_arn: str | None = None
    crm_webhook_header: str = "Authorization"
    # The agent console's CloudFront web ACL: an existing one (CLOUDFRONT scope, us-east-1) by ARN;
    # without it the console edge stack creates one in us-east-1 (docs/DEPLOY.md, The agent console).
    console_web_acl_arn: str | None = None
    # The console on a domain of the business's own (e.g. console.example.com), with its ACM
    # certificate (which CloudFront reads from us-east-1 only): viewers then get TLS 1.2 or newer
    # (TLSv1.2_2021). Both or neither; without them, the distribution's *.cloudfront.net name.
    console_domain_name: str | None = None
    console_certificate_arn: str | None = None
    # Days each table's records are kept, by table ("messages", "audit", "privacy", "costs"; 0: until
    # erased); a table not named keeps its default (coexist.resources, docs/OPERATIONS.md "Retention").
    # The audit table's is its searchable copy: the locked archive keeps `audit_retention_days`.
    retention_days: dict = field(default_factory=dict)

    def retention_for(self, spec) -> int:
        """The days `spec`'s records are kept in this deployment."""
        return int(self.retention_days.get(spec.logical_id.lower(), spec.retention_days or 0))

    def retention_environment(self, spec) -> dict[str, str]:
        """For a function that writes `spec`'s table: how long its records are kept."""
        return {spec.retention_env: str(self.retention_for(spec))} if spec.retention_days is not None else {}

    @property
    def prefix(self) -> str:
        return f"coexist-{self.stage}"


    # Stateful resources have fixed names, so the stacks that use them refer to them by name rather
    # than through CloudFormation exports (which would pin the data stack's outputs forever).
    def table_name(self, logical_id: str) -> str:
        return f"{self.prefix}-{logical_id.lower()}"

    def archive_bucket_name(self, account: str, region: str) -> str:
        return f"{self.prefix}-archive-{account}-{region}"  # bucket names are global

    def audit_bucket_name(self, account: str, region: str) -> str:
        return f"{self.prefix}-audit-{account}-{region}"

    def exports_bucket_name(self, account: str, region: str) -> str:
        return f"{self.prefix}-exports-{account}-{region}"

    @property
    def exports_queue_name(self) -> str:
        return f"{self.prefix}-exports"

    @property
    def outbound_queue_name(self) -> str:
        return f"{self.prefix}-outbound.fifo"  # FIFO queue names must end in .fifo

    def console_bucket_name(self, account: str, region: str) -> str:
        return f"{self.prefix}-console-{account}-{region}"  # bucket names are global

    def console_sign_in_domain_prefix(self, account: str) -> str:
        """The Cognito hosted sign-in's domain prefix (`<prefix>.auth.<region>.amazoncognito.com`):
        fixed, so the console's Content-Security-Policy can name it before the pool's stack exists."""
        return f"{self.prefix}-{account}"

    @property
    def console_web_acl_parameter(self) -> str:
        """The SSM parameter (us-east-1) through which the console edge stack hands over its web ACL."""
        return f"/{self.prefix}/console/web-acl-arn"

    @property
    def reminders_function_name(self) -> str:
        return f"{self.prefix}-reminders"

    @property
    def reminder_schedule_group(self) -> str:
        return f"{self.prefix}-reminders"

    @property
    def reminder_scheduler_role_name(self) -> str:
        return f"{self.prefix}-reminders-scheduler"

    @property
    def reminders_dlq_name(self) -> str:
        return f"{self.prefix}-reminders-dlq"

    @property
    def idle_schedule_group(self) -> str:
        """The bot phases' idle timers (coexist.conversation.workflow.IdleTimers)."""
        return f"{self.prefix}-conversation-idle"

    @property
    def idle_scheduler_role_name(self) -> str:
        return f"{self.prefix}-conversation-idle-scheduler"

    @property
    def idle_dlq_name(self) -> str:
        return f"{self.prefix}-conversation-idle-dlq"

    @property
    def event_bus_name(self) -> str:
        return f"{self.prefix}-events"

    @property
    def campaigns_queue_name(self) -> str:
        return f"{self.prefix}-campaigns"

    @property
    def conversation_state_machine_name(self) -> str:
        return f"{self.prefix}-conversation"

    @property
    def conversation_function_name(self) -> str:
        """The conversation workflow's function, which ingest invokes for a bot turn (BotLoop)."""
        return f"{self.prefix}-conversation"

    def conversation_function_arn(self, stack) -> str:
        """Its ARN by name: ingest's stack deploys before it, and its own role cannot name it by reference."""
        from aws_cdk import ArnFormat

        return stack.format_arn(service="lambda", resource="function", resource_name=self.conversation_function_name,
                                arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def conversation_environment(self) -> dict[str, str]:
        """COEXIST_CONVERSATION: the same timings for the workflow's steps and for the signals that
        ingest and the agent API send (the takeover cool-down is read on both sides)."""
        return {"COEXIST_CONVERSATION": json.dumps(self.conversation, sort_keys=True, separators=(",", ":"))}

    def numbers_json(self) -> str:
        """COEXIST_NUMBERS: {"<phone_number_id>": {<its settings>}}, as the sender reads it."""
        return numbers_to_json(list(self.phone_numbers))

    def graph_api_environment(self, access_token_arn: str) -> dict[str, str]:
        """What a function that calls the Graph API is told (names as in coexist.settings)."""
        return {
            "GRAPH_API_BASE_URL": self.graph_api_base_url,
            "GRAPH_API_VERSION": self.graph_api_version,
            "WHATSAPP_ACCESS_TOKEN_ARN": access_token_arn,  # the ARN only; the value is read at run time
        }

    def numbers_environment(self) -> dict[str, str]:
        """For functions that send: each number's throughput and transport."""
        return {"COEXIST_NUMBERS": self.numbers_json()}

    def rate_card_environment(self) -> dict[str, str]:
        """For functions that price messages or report costs: the deployment's rate card, if its own."""
        return {RATE_CARD_ENV: json.dumps(self.rate_card, sort_keys=True, separators=(",", ":"))} if self.rate_card else {}

    def waba_environment(self) -> dict[str, str]:
        """For functions that sync templates: the accounts whose templates are kept."""
        return {"COEXIST_WABA_IDS": ",".join(self.waba_ids)}

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
            raw["phone_numbers"] = tuple(PhoneNumber.parse(entry) for entry in raw["phone_numbers"])
            ids = [n.phone_number_id for n in raw["phone_numbers"]]
            if len(set(ids)) != len(ids):
                raise ValueError("a phone_number_id is listed twice in phone_numbers")
        if "conversation" in raw:
            conversation_settings(raw["conversation"])  # fails the synth on a wrong key, type or value
            raw["conversation"] = dict(raw["conversation"])
        if raw.get("rate_card") is not None:
            RateCard.from_document(raw["rate_card"])  # fails the synth on a card that cannot price
            raw["rate_card"] = dict(raw["rate_card"])
        if raw.get("connect") is not None:
            raw["connect"] = ConnectSettings.parse(raw["connect"])
        elif any(n.hands_to_connect for n in raw.get("phone_numbers", ())):
            raise ValueError("a number's humans are Amazon Connect, but the `connect` setting (instance_id, contact_flow_id) is missing")
        if "waba_ids" in raw:
            waba_ids = raw["waba_ids"]
            if isinstance(waba_ids, str):  # "123,456" as well as ["123", "456"]
                waba_ids = waba_ids.split(",")
            raw["waba_ids"] = tuple(str(w).strip() for w in waba_ids if str(w).strip())
        if "retention_days" in raw:
            raw["retention_days"] = _retention_days(raw["retention_days"])
        config = cls(**raw)
        if config.archive_lock_mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise ValueError("archive_lock_mode must be GOVERNANCE or COMPLIANCE")
        if not 1 <= config.audit_retention_days <= 36500:
            raise ValueError("audit_retention_days must be between 1 and 36500 (S3 Object Lock's limit)")
        if not config.graph_api_base_url.startswith("https://"):
            raise ValueError("graph_api_base_url must be an https:// URL (the access token travels with every call)")
        if not re.fullmatch(r"v\d+\.\d+", config.graph_api_version):
            raise ValueError("graph_api_version looks like v24.0")
        if not 2 <= config.ingest_max_concurrency <= 1000:
            raise ValueError("ingest_max_concurrency must be between 2 and 1000 (Lambda's limits for an SQS event source)")
        if not 10 <= config.api_rate_limit_per_ip <= 2_000_000_000:
            raise ValueError("api_rate_limit_per_ip must be between 10 and 2,000,000,000 (WAF's limits)")
        if bool(config.crm_webhook_url) != bool(config.crm_webhook_secret_arn):
            raise ValueError("crm_webhook_url and crm_webhook_secret_arn go together (the CRM's URL and its token's secret)")
        if config.crm_webhook_url and not config.crm_webhook_url.startswith("https://"):
            raise ValueError("crm_webhook_url must be an https:// URL (its token travels with every event)")
        if config.crm_webhook_secret_arn and not config.crm_webhook_secret_arn.startswith("arn:"):
            raise ValueError("crm_webhook_secret_arn must be a Secrets Manager secret's ARN")
        if config.console_web_acl_arn is not None and not re.fullmatch(
            r"arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/[^/]+/[^/]+", config.console_web_acl_arn
        ):
            raise ValueError("console_web_acl_arn must be a CLOUDFRONT-scope web ACL's ARN (wafv2, us-east-1, global/webacl/…)")
        if bool(config.console_domain_name) != bool(config.console_certificate_arn):
            raise ValueError("console_domain_name and console_certificate_arn go together (the domain and its ACM certificate)")
        if config.console_domain_name and not re.fullmatch(
            r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", config.console_domain_name
        ):
            raise ValueError("console_domain_name must be a lower-case host name such as console.example.com")
        if config.console_certificate_arn and not re.fullmatch(
            r"arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]+", config.console_certificate_arn
        ):
            raise ValueError("console_certificate_arn must be an ACM certificate's ARN in us-east-1 (the only region CloudFront reads)")
        return config


def _retention_days(raw) -> dict:
    """`retention_days` checked at synth: known tables, whole days from 0 (until erased) to 100 years."""
    from coexist.resources import TABLES

    known = {spec.logical_id.lower() for spec in TABLES if spec.retention_days is not None}
    if not isinstance(raw, dict):
        raise ValueError(f"retention_days must be an object of days by table: {sorted(known)}")
    if unknown := sorted(set(raw) - known):
        raise ValueError(f"retention_days: unknown tables {unknown} (known: {sorted(known)})")
    for table, days in raw.items():
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 36500:
            raise ValueError(f"retention_days {table} must be whole days from 0 (kept until erased) to 36500")
    return dict(raw)
