"""The one definition of Coexist's data resources.

CDK stacks, local mode and the tests all build tables from these specs, so a key or an index is
declared once. Every key attribute is a string unless its spec says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from coexist.outbound.deadlines import SENDER_TIMEOUT_S  # noqa: F401 - the stacks and local mode read it here


@dataclass(frozen=True)
class Key:
    name: str
    type: str = "S"  # "S" or "N"


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: Key
    sort_key: Key | None = None


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    env_var: str
    partition_key: Key
    sort_key: Key | None = None
    indexes: tuple[Index, ...] = field(default_factory=tuple)
    ttl_attribute: str | None = None
    # "NEW_IMAGE", "KEYS_ONLY", …: the table streams its changes — the audit trail's copy to its locked
    # bucket (NEW_IMAGE); the console's live channel (coexist/live) is fed the keys only, never the
    # attributes (KEYS_ONLY).
    stream_view_type: str | None = None
    # How long the table's records are kept by default, in days (0: until erased), when its records
    # expire through `ttl_attribute`; `retention_env` (and the CDK setting `retention_days`) override
    # it. docs/OPERATIONS.md ("Retention") says from when each table counts.
    retention_days: int | None = None

    @property
    def retention_env(self) -> str:
        return f"{self.logical_id.upper()}_RETENTION_DAYS"

    def key_schema(self) -> list[dict]:
        schema = [{"AttributeName": self.partition_key.name, "KeyType": "HASH"}]
        if self.sort_key:
            schema.append({"AttributeName": self.sort_key.name, "KeyType": "RANGE"})
        return schema

    def attribute_definitions(self) -> list[dict]:
        keys = [self.partition_key, self.sort_key]
        for index in self.indexes:
            keys += [index.partition_key, index.sort_key]
        seen: dict[str, str] = {}
        for key in keys:
            if key is not None:
                seen.setdefault(key.name, key.type)
        return [{"AttributeName": n, "AttributeType": t} for n, t in seen.items()]

    def create_table_kwargs(self, table_name: str) -> dict:
        """Arguments for boto3 `create_table` (local mode and tests)."""
        kwargs: dict = {
            "TableName": table_name,
            "KeySchema": self.key_schema(),
            "AttributeDefinitions": self.attribute_definitions(),
            "BillingMode": "PAY_PER_REQUEST",
        }
        if self.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [{"AttributeName": index.partition_key.name, "KeyType": "HASH"}]
                    + ([{"AttributeName": index.sort_key.name, "KeyType": "RANGE"}] if index.sort_key else []),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        if self.stream_view_type:
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view_type}
        return kwargs


# A WhatsApp business phone number: coexistence state, history-sync progress, last app activity.
NUMBERS = TableSpec(
    logical_id="Numbers",
    env_var="NUMBERS_TABLE",
    partition_key=Key("phone_number_id"),
    indexes=(Index("by_waba", Key("waba_id")),),
)

# A WhatsApp Business Account: its coexistence state (item sk="STATE") and every account_update
# event it received (sk="EVENT#<time>#<event>#<digest>").
ACCOUNTS = TableSpec(
    logical_id="Accounts",
    env_var="ACCOUNTS_TABLE",
    partition_key=Key("waba_id"),
    sort_key=Key("sk"),
)

# One conversation thread between a business number and a customer, keyed by the customer's opaque
# id (the chat id), never by a phone number; the number's chats are listed through `by_recent`.
CHATS = TableSpec(
    logical_id="Chats",
    env_var="CHATS_TABLE",
    partition_key=Key("chat_id"),
    indexes=(
        Index("by_recent", Key("phone_number_id"), Key("last_message_at", "N")),
        # "Chats of this agent", newest first.
        Index("by_assignee", Key("assignee"), Key("last_message_at", "N")),
        # Sparse: only closed chats carry its keys (when they went quiet), so the retention sweeper
        # finds those whose messages may expire with a query (store/chats.py, coexist.retention).
        Index("retention", Key("retention_shard"), Key("retention_from", "N")),
    ),
    stream_view_type="KEYS_ONLY",  # the console's live channel
)

# The chats table also maps each Amazon Connect contact to its chat (coexist/store/chats.py): items
# keyed `connect#<contact id>`, which are not chats.
CONTACT_MAP_PREFIX = "connect#"

# Messages are keyed by their id (the wamid for anything Meta has seen) because deduplication and
# status updates arrive with the wamid alone; the chat index serves the conversation view.
MESSAGES = TableSpec(
    logical_id="Messages",
    env_var="MESSAGES_TABLE",
    partition_key=Key("id"),
    indexes=(
        Index("by_chat", Key("chat_id"), Key("position")),
        # Sparse: only messages not yet handed to Meta (`queued` or `sending`) carry its keys, so the
        # sweeper finds the ones left behind with a query instead of a scan (store/messages.py).
        Index("unsent", Key("unsent_shard"), Key("unsent_since_ms", "N")),
    ),
    stream_view_type="KEYS_ONLY",  # the console's live channel
    # Counted from the chat's last activity once closed, never while open, suspended by a legal hold
    # (coexist.domain.retention). Six years: HIPAA's retention of documentation; state law on
    # medical records may ask for more (set it), 0 keeps messages until erased.
    ttl_attribute="expires_at",
    retention_days=6 * 365,
)

# Customers of a business number and the identifiers Meta names them by: one item per customer
# (sk "customer#<customer id>": its current phone number, BSUID, parent BSUID and username, the
# changes and merges it went through) and one per identifier ("wa#<phone>", "bsuid#<BSUID>",
# "parent#<parent BSUID>") pointing at the customer, so any identifier is one key read away.
CUSTOMERS = TableSpec(
    logical_id="Customers",
    env_var="CUSTOMERS_TABLE",
    partition_key=Key("phone_number_id"),
    sort_key=Key("sk"),
)

# A customer as the business knows them: profile name, phone-app contact card, consent ledger. Keyed
# by the customer (its chat id), so consent follows the customer whatever identifier it writes with.
CONTACTS = TableSpec(
    logical_id="Contacts",
    env_var="CONTACTS_TABLE",
    partition_key=Key("phone_number_id"),
    sort_key=Key("customer_id"),
)

# Message templates of a WhatsApp Business Account, synced from Meta (sk = "<name>#<language>").
TEMPLATES = TableSpec(
    logical_id="Templates",
    env_var="TEMPLATES_TABLE",
    partition_key=Key("waba_id"),
    sort_key=Key("template_key"),
)

# Send pacing shared by every sender: token buckets per number and per recipient, and each
# number's circuit breaker. Items expire by themselves once idle.
THROTTLE = TableSpec(
    logical_id="Throttle",
    env_var="THROTTLE_TABLE",
    partition_key=Key("bucket_id"),
    ttl_attribute="expires_at",
)

# Step Functions task tokens, each under a short reference the chats hold instead (`workflow_token`,
# `bot_token`): a token is hundreds of bytes (up to 2 KB), and on the chat it took the item over a
# kilobyte, doubling the write units of every write of a chat in a conversation and of its inbox
# index entries (docs/SCALE.md). Each token expires a year and a day after it was kept: a Standard
# execution's longest life.
TASK_TOKENS = TableSpec(
    logical_id="TaskTokens",
    env_var="TASK_TOKENS_TABLE",
    partition_key=Key("ref"),
    ttl_attribute="expires_at",
)
TASK_TOKEN_LIFETIME_S = 366 * 24 * 3600

# The built-in agent directory: skills, availability, capacity and current load.
AGENTS = TableSpec(
    logical_id="Agents",
    env_var="AGENTS_TABLE",
    partition_key=Key("agent_id"),
    indexes=(Index("by_availability", Key("availability")),),
)

# The cost ledger: one entry per message Meta prices (a delivered template, a free reply) and per
# reply sent from the Business App (free, with what the API would have charged), keyed by number
# and message id so a retried webhook writes the same entry; `by_time` serves a period's report.
COSTS = TableSpec(
    logical_id="Costs",
    env_var="COSTS_TABLE",
    partition_key=Key("phone_number_id"),
    sort_key=Key("message_id"),
    indexes=(Index("by_time", Key("phone_number_id"), Key("at", "N")),),
    ttl_attribute="expires_at",
    retention_days=2 * 365,  # from the message's pricing: two years of period reports (Meta's invoices are the books)
)

# The audit trail: who did what to which chat, when, from where, allowed or refused. Append-only:
# entries are put once under a condition that they are new and never updated or deleted; the
# stream copies each one to the audit bucket (S3 Object Lock, compliance mode). Partitioned by UTC
# day (sk "<time>#<entry id>"), with the entries of one principal and of one chat each an index away.
AUDIT = TableSpec(
    logical_id="Audit",
    env_var="AUDIT_TABLE",
    partition_key=Key("day"),
    sort_key=Key("at"),
    indexes=(Index("by_actor", Key("actor"), Key("at")), Index("by_chat", Key("chat_id"), Key("at"))),
    stream_view_type="NEW_IMAGE",
    # The table is the searchable copy: from the entry's time, six years like the locked archive's
    # default. The archive (S3 Object Lock, `audit_retention_days`) is not shortened by this setting.
    ttl_attribute="expires_at",
    retention_days=6 * 365,
)

# Customers' rights: legal holds (pk "chat#<chat id>", sk "hold"), the erasure list (pk "erasure",
# sk "<time>#<chat id>") with a mark on each erased chat (pk "chat#<chat id>", sk "erased") and
# export requests (pk "export#<id>", sk "export"). Ids only, no content.
PRIVACY = TableSpec(
    logical_id="Privacy",
    env_var="PRIVACY_TABLE",
    partition_key=Key("pk"),
    sort_key=Key("sk"),
    # Export requests only, from their request (the file itself goes after EXPORTS_KEPT_DAYS); legal
    # holds, the erasure list and its marks never expire.
    ttl_attribute="expires_at",
    retention_days=30,
)

# One-time reminders (coexist.reminders): the template to send, when, to whom, and the answer.
REMINDERS = TableSpec(
    logical_id="Reminders",
    env_var="REMINDERS_TABLE",
    partition_key=Key("reminder_id"),
)

# The agent consoles connected to the live channel (API Gateway WebSocket API): one item per open
# socket, dropped by the channel's $disconnect or, for a socket that vanished, by its TTL.
CONNECTIONS = TableSpec(
    logical_id="Connections",
    env_var="CONNECTIONS_TABLE",
    partition_key=Key("connection_id"),
    ttl_attribute="expires_at",
)

# Campaigns (coexist.campaigns): each campaign, its stored recipient pages and progress counters;
# the campaign a customer last heard from; each portfolio's messaging-limit ledger
# (layout in coexist.store.campaigns). Pages and ledger entries expire by themselves.
CAMPAIGNS = TableSpec(
    logical_id="Campaigns",
    env_var="CAMPAIGNS_TABLE",
    partition_key=Key("pk"),
    sort_key=Key("sk"),
    ttl_attribute="expires_at",
)

TABLES: tuple[TableSpec, ...] = (NUMBERS, ACCOUNTS, CHATS, MESSAGES, CONTACTS, TEMPLATES, THROTTLE, AGENTS, CUSTOMERS, COSTS, AUDIT, PRIVACY, REMINDERS, CONNECTIONS, CAMPAIGNS,
                                 TASK_TOKENS)

# The deployed agent console's origin (its CloudFront URL): the one origin the REST API's CORS allows,
# and the request headers the console sends it.
CONSOLE_ORIGIN_ENV = "COEXIST_CONSOLE_ORIGIN"
CONSOLE_REQUEST_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
# The console's live channel: the WebSocket API and stage the fan-out posts to (its management
# endpoint is https://<api id>.execute-api.<region>.amazonaws.com/<stage>), and the Cognito user
# pool (issuer) and app client whose ID tokens its $connect accepts.
LIVE_API_ID_ENV = "LIVE_API_ID"
LIVE_STAGE_ENV = "LIVE_STAGE"
COGNITO_ISSUER_ENV = "COGNITO_ISSUER"
CONSOLE_CLIENT_ID_ENV = "CONSOLE_CLIENT_ID"

# The conversation workflow (Step Functions, Standard): one definition file, rendered with the
# same substitutions by the CDK stack, local mode and the tests.
CONVERSATION_STATE_MACHINE_ENV = "CONVERSATION_STATE_MACHINE_ARN"
# The conversation function, which ingest (and the function itself) invokes for a bot turn (BotLoop).
CONVERSATION_FUNCTION_ENV = "CONVERSATION_FUNCTION_NAME"
CONVERSATION_DEFINITION = "statemachine/conversation.asl.json"

# Queues: Meta webhooks wait here between the fast webhook acknowledgement and ingest.
INBOUND_QUEUE_ENV = "INBOUND_QUEUE_URL"
INBOUND_VISIBILITY_TIMEOUT_S = 180  # six times the ingest function's timeout, as AWS recommends
INBOUND_MAX_RECEIVES = 5  # then the envelope is parked in the DLQ with an alarm
INGEST_BATCH_SIZE = 10
INGEST_TIMEOUT_S = 30

# The raw archive's queue: every body that travels inline to ingest also goes here, and the raw
# archive function writes each batch as one JSON-lines object under raw/ (an S3 PUT per webhook was
# the largest single price of an inbound message; docs/SCALE.md). The window is what makes batches
# at low volume: at 0.4 webhooks a second, five minutes are about 115 bodies to one object.
RAW_ARCHIVE_QUEUE_ENV = "RAW_ARCHIVE_QUEUE_URL"
RAW_ARCHIVE_BATCH_SIZE = 1000
RAW_ARCHIVE_WINDOW_S = 300  # Lambda's longest batching window
RAW_ARCHIVE_TIMEOUT_S = 60
# Lambda keeps a batch's messages invisible from the window's start: the window and six timeouts.
RAW_ARCHIVE_VISIBILITY_TIMEOUT_S = RAW_ARCHIVE_WINDOW_S + 6 * RAW_ARCHIVE_TIMEOUT_S
RAW_ARCHIVE_MAX_CONCURRENCY = 2  # batches written at once
RAW_ARCHIVE_MAX_RECEIVES = 5  # then the bodies are parked in its DLQ with an alarm (still held 14 days)

# Outbound: a FIFO queue, one message group per number and recipient so each customer's messages
# keep their order while different customers are sent in parallel.
OUTBOUND_QUEUE_ENV = "OUTBOUND_QUEUE_URL"
OUTBOUND_VISIBILITY_TIMEOUT_S = 6 * SENDER_TIMEOUT_S  # as AWS recommends: a message is never handed to two senders
OUTBOUND_DLQ_ENV = "OUTBOUND_DLQ_URL"
# Every receive counts, deferrals too (a slot not yet due, an open circuit), so this is only the net
# under a message the sender cannot even handle; its own budget for retrying Meta is the one below.
OUTBOUND_MAX_RECEIVES = 50
OUTBOUND_MAX_SEND_ATTEMPTS = 10  # calls to Meta that failed transiently, then the message is parked
SENDER_MAX_CONCURRENCY = 10  # instances per deployment; pacing is shared, this bounds the bucket's contention
SENDER_BATCH_SIZE = 10  # the FIFO maximum
# SENDER_TIMEOUT_S: derived from the worst case of one send (coexist.outbound.deadlines).
# The sweeper (coexist.outbound.sweeper): how often it runs, when a message still waiting to be sent
# counts as left behind (well past the queue's 5-minute deduplication window), and how many messages
# one run looks at (the next run carries on).
SWEEP_EVERY_S = 300
STUCK_AFTER_S = 900
SWEEP_LIMIT = 500
SWEEPER_TIMEOUT_S = 60

# Operations: the daily app-inactivity watch (the 14-day rule) tells operators through this topic.
OPERATIONS_TOPIC_ENV = "OPERATIONS_TOPIC_ARN"
APP_WATCH_EVERY_S = 24 * 3600
WATCHDOG_TIMEOUT_S = 60

ARCHIVE_BUCKET_ENV = "ARCHIVE_BUCKET"
# S3 prefixes in the archive bucket.
RAW_PREFIX = "raw/"  # every signed webhook body, as received
QUARANTINE_PREFIX = "quarantine/"  # signed bodies that are not a WhatsApp envelope
UNHANDLED_PREFIX = "unhandled/"  # changes of a field this version does not model

# The audit trail's immutable copy: JSON lines under audit/, in a bucket under Object Lock.
AUDIT_BUCKET_ENV = "AUDIT_BUCKET"
AUDIT_PREFIX = "audit/"
AUDIT_ARCHIVE_BATCH_SIZE = 100
AUDIT_ARCHIVE_TIMEOUT_S = 60

# Exports of everything held about one customer: requested through the API, built by the exporter
# function from this queue, written under exports/ in a private bucket, fetched by presigned URL.
EXPORTS_QUEUE_ENV = "EXPORTS_QUEUE_URL"
EXPORTS_BUCKET_ENV = "EXPORTS_BUCKET"
EXPORTS_PREFIX = "exports/"
EXPORTER_TIMEOUT_S = 300
EXPORTS_VISIBILITY_TIMEOUT_S = 6 * EXPORTER_TIMEOUT_S
EXPORTS_MAX_RECEIVES = 3
EXPORT_URL_EXPIRES_S = 900  # a presigned URL to a finished export is good for 15 minutes
EXPORTS_KEPT_DAYS = 7  # then the bucket's lifecycle removes the file (ask again for a new one)
# The webhook archive's Object Lock retention as deployed (an erasure's answer says until when the
# archived webhook bodies of a customer must stay).
ARCHIVE_RETENTION_ENV = "ARCHIVE_RETENTION_DAYS"

# CloudWatch namespace of every custom metric (alarms in the stacks refer to it).
METRICS_NAMESPACE = "Coexist"
# A send cut off mid-call to Meta: failed `outcome_unknown`, never re-sent; it pages (docs/OPERATIONS.md).
SENDER_OUTCOME_UNKNOWN_METRIC = "SenderOutcomeUnknown"

# The rate card Meta's prices are read from (coexist/pricing/); COEXIST_RATE_CARD overrides it with a
# JSON document of the same shape (docs/OPERATIONS.md, "The cost ledger").
RATE_CARD = "rate_card_2025-07.json"
RATE_CARD_ENV = "COEXIST_RATE_CARD"

# Domain events for CRMs (coexist.events): the EventBridge bus they go to, and the count of events
# given up after retries (an alarm watches it; the business writes they describe stand).
EVENT_BUS_ENV = "EVENT_BUS_NAME"
EVENT_SOURCE = "coexist"  # every domain event's `source`: what a rule on the bus matches
CRM_EVENTS_FAILED_METRIC = "CrmEventsFailed"

# Reminders' one-time schedules (EventBridge Scheduler): their group, the function they invoke, the
# role Scheduler invokes it with, and where an invocation that keeps failing is parked.
REMINDER_SCHEDULE_GROUP_ENV = "REMINDER_SCHEDULE_GROUP"
REMINDER_TARGET_ARN_ENV = "REMINDER_TARGET_ARN"
REMINDER_SCHEDULER_ROLE_ARN_ENV = "REMINDER_SCHEDULER_ROLE_ARN"
REMINDER_DLQ_ARN_ENV = "REMINDER_DLQ_ARN"
# A bot phase's idle timer (coexist.conversation.workflow.IdleTimers): one-time schedules of their own
# group that invoke the conversation function, through a role that may invoke only it.
IDLE_SCHEDULE_GROUP_ENV = "IDLE_SCHEDULE_GROUP"
IDLE_TARGET_ARN_ENV = "IDLE_TARGET_ARN"
IDLE_SCHEDULER_ROLE_ARN_ENV = "IDLE_SCHEDULER_ROLE_ARN"
IDLE_DLQ_ARN_ENV = "IDLE_DLQ_ARN"
REMINDERS_TIMEOUT_S = 30

# Campaigns: one message per page to run (standard queue, delayed to when the page is due), consumed
# by the campaigns function one page at a time.
CAMPAIGNS_QUEUE_ENV = "CAMPAIGNS_QUEUE_URL"
CAMPAIGNS_TIMEOUT_S = 300  # one page: a few hundred sends put through the policy and onto the queue
CAMPAIGNS_VISIBILITY_TIMEOUT_S = 6 * CAMPAIGNS_TIMEOUT_S
CAMPAIGNS_MAX_RECEIVES = 5
CAMPAIGN_PAGE_SIZE_ENV = "COEXIST_CAMPAIGN_PAGE_SIZE"
# The retention sweeper (coexist.retention): once a day, closed chats quiet for longer than the
# messages' retention get their messages stamped with `expires_at` (DynamoDB TTL removes them).
RETENTION_EVERY_S = 24 * 3600
RETENTION_TIMEOUT_S = 300
RETENTION_SHARDS = 8  # partitions of the chats' `retention` index
RETENTION_CHATS_PER_RUN = 500  # the next run carries on
