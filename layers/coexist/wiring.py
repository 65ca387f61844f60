"""Build the services from settings, once per process: the one place that knows which table
serves which store. Built on first use, never at import, so a cold start pays only for what the
function touches."""

from __future__ import annotations

from functools import lru_cache

from coexist import aws
from coexist.settings import settings


@lru_cache(maxsize=1)
def archive():
    """The raw-webhook archive as ingest and the API use it: seldom (big or malformed bodies,
    unhandled changes, media), so its S3 client is made on the first call."""
    from coexist.store.archive import Archive, RawArchiveQueue

    config = settings()
    # Ingest archives End User Messaging Social bodies through the raw archive's queue, as the webhook does.
    batches = (RawArchiveQueue(aws.ClientOnFirstCall("sqs"), config.raw_archive_queue_url, config.inline_body_limit)
               if config.raw_archive_queue_url else None)
    return Archive(aws.ClientOnFirstCall("s3"), config.archive_bucket, batches)


@lru_cache(maxsize=1)
def raw_archive():
    """The archive as the raw archive function writes it: one object per batch of bodies."""
    from coexist.store.archive import Archive

    return Archive(aws.client("s3"), settings().archive_bucket)


@lru_cache(maxsize=1)
def intake():
    from coexist.intake import InboundQueue, Intake
    from coexist.store.archive import Archive, RawArchiveQueue

    config = settings()
    # Every body that travels inline reaches the archive through its queue; the webhook writes to
    # the bucket itself only for big or malformed bodies, so its S3 client is made on the first call.
    archived = Archive(aws.ClientOnFirstCall("s3"), config.archive_bucket)
    sqs = aws.client("sqs")
    return Intake(archived, InboundQueue(sqs, config.inbound_queue_url, config.inline_body_limit),
                  RawArchiveQueue(sqs, config.raw_archive_queue_url, config.inline_body_limit))


# Each store on its own, so a function that needs one or two (the sweeper, the app watch, the
# retention sweep) builds those alone: the whole inbox also imports and wires the cost recorder and
# its rate card, customers, consent and the throughput count, about 230 ms of a cold start here.
@lru_cache(maxsize=1)
def message_store():
    from coexist.store.messages import MessageStore

    return MessageStore(aws.table(settings().messages_table), progress=campaign_store())


@lru_cache(maxsize=1)
def chat_repository():
    from coexist.store.chats import ChatRepository
    from coexist.store.task_tokens import TaskTokens

    config = settings()
    return ChatRepository(aws.table(config.chats_table), observer=_chat_events(), tokens=TaskTokens(aws.table(config.task_tokens_table)))


@lru_cache(maxsize=1)
def contact_store():
    from coexist.store.consent import ConsentLedger
    from coexist.store.contacts import ContactStore

    contacts_table = aws.table(settings().contacts_table)
    return ContactStore(contacts_table, ConsentLedger(contacts_table, on_recorded=_consent_events()))


@lru_cache(maxsize=1)
def number_store():
    from coexist.store.numbers import NumberStore

    return NumberStore(aws.table(settings().numbers_table))


@lru_cache(maxsize=1)
def account_store():
    from coexist.store.numbers import AccountStore

    return AccountStore(aws.table(settings().accounts_table))


@lru_cache(maxsize=1)
def inbox():
    from coexist.costs import CostRecorder
    from coexist.inbox import Inbox
    from coexist.store.customers import CustomerStore

    return Inbox(
        messages=message_store(),
        chats=chat_repository(),
        contacts=contact_store(),
        numbers=number_store(),
        accounts=account_store(),
        archive=archive(),
        customers=CustomerStore(aws.table(settings().customers_table)),
        costs=CostRecorder(cost_ledger(), message_store(), chat_repository(), rate_card()),  # ingest prices what it ingests
        campaigns=campaign_store(),
        throughput=_inbound_count(),
    )


def _inbound_count():
    from coexist.outbound.inbound_count import InboundCount

    return InboundCount(throttle(), cached_number_settings())


@lru_cache(maxsize=1)
def rate_card():
    from coexist.costs import load_rate_card

    return load_rate_card(settings().rate_card)


@lru_cache(maxsize=1)
def cost_ledger():
    from coexist.store.costs import CostLedger

    from coexist import resources

    return CostLedger(aws.table(settings().costs_table), settings().retention_days(resources.COSTS))


@lru_cache(maxsize=1)
def inbox_reader():
    from coexist.reads import InboxReader

    return InboxReader(inbox(), erased=lambda chat_id: privacy_store().erased(chat_id))


@lru_cache(maxsize=1)
def templates():
    from coexist.store.templates import TemplateStore

    return TemplateStore(aws.table(settings().templates_table))


@lru_cache(maxsize=1)
def graph_api():
    from coexist.outbound.graph import GraphApi

    config = settings()
    return GraphApi(config.graph_api_base_url, config.graph_api_version, lambda: config.secret("access_token"))


@lru_cache(maxsize=1)
def outbox():
    from coexist.outbound.outbox import Outbox
    from coexist.outbound.queue import OutboundQueue

    return Outbox(inbox(), templates(), OutboundQueue(aws.client("sqs"), settings().outbound_queue_url))


@lru_cache(maxsize=1)
def sweeper():
    from coexist.outbound.queue import OutboundQueue
    from coexist.outbound.sweeper import Sweeper

    return Sweeper(message_store(), OutboundQueue(aws.client("sqs"), settings().outbound_queue_url))


@lru_cache(maxsize=1)
def throttle():
    from coexist.store.throttle import Throttle

    return Throttle(aws.table(settings().throttle_table))


def number_settings(phone_number_id: str):
    from coexist.outbound.number_settings import settings_for

    number = number_store().get(phone_number_id)
    account = account_store().state(number["waba_id"]) if number and number.get("waba_id") else None
    return settings_for(number_config(phone_number_id), number, (account or {}).get("state"))


def number_config(phone_number_id: str):
    """The deployment's settings of a number (COEXIST_NUMBERS), the defaults for one it does not name."""
    from coexist.number_config import number_config as lookup

    return lookup(phone_number_id, settings().numbers_config)


@lru_cache(maxsize=1)
def sender():
    from coexist.outbound.deadlines import CONNECT_TIMEOUT_S, READ_TIMEOUT_S
    from coexist.outbound.graph import SocialMessagingTransport
    from coexist.outbound.number_settings import GRAPH, SOCIAL_MESSAGING
    from coexist.outbound.sender import Sender

    # The send is made once: boto3's own retries would repeat a send whose answer was lost.
    social = aws.single_attempt_client("socialmessaging", CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    transports = {
        GRAPH: graph_api(),
        SOCIAL_MESSAGING: SocialMessagingTransport(social, settings().graph_api_version),
    }
    return Sender(inbox(), throttle(), cached_number_settings(), transports, events=events(),
                  campaign_state=lambda campaign_id: (campaign_store().get(campaign_id) or {}).get("state"))


@lru_cache(maxsize=1)
def cached_number_settings(ttl_s: float = 60.0):
    """Number settings change rarely; read them at most once a minute per number."""
    from coexist.store.memo import ReadAtMostEvery

    return ReadAtMostEvery(number_settings, ttl_s)


@lru_cache(maxsize=1)
def agents():
    from coexist.store.agents import AgentStore

    return AgentStore(aws.table(settings().agents_table))


@lru_cache(maxsize=1)
def workflow():
    from coexist.conversation.workflow import IdleTimers, Workflow
    from coexist.reminders.schedules import OneTimeSchedules

    config = settings()
    # Made on their first call, as the bot loop's: most invocations touch no bot phase.
    schedules = OneTimeSchedules(aws.ClientOnFirstCall("scheduler"), config.idle_schedule_group, config.idle_target_arn,
                                 config.idle_scheduler_role_arn, config.idle_dlq_arn)
    timers = IdleTimers(schedules, conversation_settings().customer_idle_s)
    return Workflow(aws.client("stepfunctions"), config.conversation_state_machine_arn, timers, conversation_settings().timeouts())


@lru_cache(maxsize=1)
def signals():
    from coexist.conversation.signals import Signals

    return Signals(chat_repository(), workflow(), agents(), conversation_settings().takeover_cool_down_s, connect=connect_desk(),
                   bot_loop=bot_loop())


@lru_cache(maxsize=1)
def bot_loop():
    from coexist.conversation.workflow import BotLoop

    # Made on its first call: most of ingest's invocations wake no bot turn.
    return BotLoop(workflow(), aws.ClientOnFirstCall("lambda"), settings().conversation_function_name)


@lru_cache(maxsize=1)
def conversation_settings():
    from coexist.conversation.settings import ConversationSettings

    return ConversationSettings.from_environ()


def conversation_steps(count_metric=lambda name: None):
    from coexist.conversation.bot_turns import BotTurns
    from coexist.conversation.steps import ConversationSteps

    return ConversationSteps(
        chats=chat_repository(),
        agents=agents(),
        workflow=workflow(),
        outbox=outbox(),
        messages=message_store(),
        run_bot=BotTurns(contact_store(), bot_for_number, clock=__import__("time").time, events=events()).run,
        settings=conversation_settings(),
        metrics=count_metric,
        connect=connect_desk(count_metric),
        bot_loop=bot_loop(),
    )


def connect_client(service: str):
    """Amazon Connect's clients (`connect`, `connectparticipant`). Looked up at each use, so tests
    can put stubbed clients here."""
    return aws.client(service)


def connect_desk(count_metric=lambda name: None):
    """Humans on Amazon Connect (coexist.conversation.connect): handoff, relay, streaming events."""
    from coexist.conversation.connect import ConnectDesk

    return ConnectDesk(
        chats=chat_repository(),
        messages=message_store(),
        contacts=contact_store(),
        workflow=workflow(),
        outbox=outbox(),
        clients=lambda service: connect_client(service),
        number_config=number_config,
        metrics=count_metric,
    )


def bot_for_number(phone_number_id: str):
    """The bot configured for this number, the rules bot by default."""
    from coexist.bots.factory import provider_for

    return provider_for(number_config(phone_number_id).bot, aws.client)


def app_watchdog():
    """The 14-day rule's daily watch, telling operators through the operations topic."""
    import json

    from coexist.watchdog import AppWatchdog

    topic = settings().operations_topic_arn
    sns = aws.client("sns")

    def notify(warning) -> None:
        sns.publish(
            TopicArn=topic,
            Subject=f"WhatsApp number {warning.phone_number_id}: Business App unused for {warning.days} days",
            Message=json.dumps({
                "phone_number_id": warning.phone_number_id,
                "days_without_app": warning.days,
                "disconnect_expected_at": warning.disconnect_expected_at,
                "action": "Open the WhatsApp Business App on the phone of this number (sending one message "
                          "from it is the sure sign); Meta disconnects it from the API after about 14 days.",
            }),
        )

    return AppWatchdog(number_store(), account_store(), notify)


@lru_cache(maxsize=1)
def audit_log():
    from coexist.store.audit import AuditLog

    from coexist import resources

    return AuditLog(aws.table(settings().audit_table), retention_days=settings().retention_days(resources.AUDIT))


@lru_cache(maxsize=1)
def audit_archive():
    from coexist.store.audit import AuditArchive

    return AuditArchive(aws.client("s3"), settings().audit_bucket)


@lru_cache(maxsize=1)
def customer_rights():
    from coexist.privacy import CustomerRights

    config = settings()
    return CustomerRights(inbox(), privacy_store(), audit_log(), config.archive_retention_days, retention=retention_sweeper(),
                          campaigns=campaign_store(), stop_conversation=_stop_erased_conversation)


def _stop_erased_conversation(conversation_id: str) -> None:
    from coexist.conversation.workflow import CHAT_ERASED

    workflow().stop(conversation_id, CHAT_ERASED, "the customer's data was erased")


@lru_cache(maxsize=1)
def privacy_store():
    from coexist import resources
    from coexist.store.privacy import PrivacyStore

    return PrivacyStore(aws.table(settings().privacy_table), settings().retention_days(resources.PRIVACY))


@lru_cache(maxsize=1)
def retention_sweeper():
    from coexist import resources
    from coexist.retention import RetentionSweeper
    from coexist.store.retention import MessageExpiry

    config = settings()
    expiry = MessageExpiry(aws.table(config.messages_table))
    return RetentionSweeper(chat_repository(), expiry, privacy_store(), config.retention_days(resources.MESSAGES))


def erasure_replay():
    from coexist.privacy import ErasureReplay

    return ErasureReplay(privacy_store(), message_store(), chat_repository(), contact_store())


def exports_queue():
    return aws.client("sqs")


@lru_cache(maxsize=1)
def export_files():
    """S3, for the export files (written by the exporter, handed out by presigned URL). Signature
    version 4: S3 refuses any other on a KMS-encrypted object."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(signature_version="s3v4", retries={"max_attempts": 4, "mode": "standard"}))


@lru_cache(maxsize=1)
def events():
    """Domain events for CRMs (coexist.events): `events().publish(event, …)` after the write they describe."""
    from coexist.events.publisher import EventPublisher, NoBus

    config = settings()
    if not config.event_bus_name:
        return NoBus()
    return EventPublisher(aws.client("events"), config.event_bus_name, include_text=config.crm_events_include_text,
                          on_failure=_count_failed_events)


@lru_cache(maxsize=1)
def reminders():
    """One-time reminders: scheduled on EventBridge Scheduler, sent through the outbox."""
    from coexist.reminders.schedules import OneTimeSchedules
    from coexist.reminders.service import Reminders
    from coexist.store.reminders import ReminderStore

    config = settings()
    schedules = OneTimeSchedules(aws.client("scheduler"), config.reminder_schedule_group, config.reminder_target_arn,
                                 config.reminder_scheduler_role_arn, config.reminder_dlq_arn)
    return Reminders(ReminderStore(aws.table(config.reminders_table)), schedules, outbox(), chat_repository(), events())


def _count_failed_events(count: int) -> None:
    # Powertools metrics are shared by every Metrics instance of the process: the handler flushes them.
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    from coexist.resources import CRM_EVENTS_FAILED_METRIC, METRICS_NAMESPACE

    Metrics(namespace=METRICS_NAMESPACE).add_metric(name=CRM_EVENTS_FAILED_METRIC, unit=MetricUnit.Count, value=count)


def _chat_events():
    """The chat repository's observer: every change of hands a CRM cares about, as an event."""
    from coexist.events.from_chats import chat_observer

    return chat_observer(lambda found: events().publish(found))


def _consent_events():
    """The consent ledger's observer: every change recorded, as an event."""
    from coexist.events.from_consent import consent_observer

    return consent_observer(lambda found: events().publish(found))


@lru_cache(maxsize=1)
def campaign_store():
    from coexist.store.campaigns import CampaignStore

    return CampaignStore(aws.table(settings().campaigns_table))


@lru_cache(maxsize=1)
def campaigns():
    from coexist.campaigns import CampaignQueue, Campaigns
    from coexist.events.from_campaigns import campaign_finished

    config = settings()
    return Campaigns(
        inbox(), outbox(), campaign_store(), templates(), CampaignQueue(aws.client("sqs"), config.campaigns_queue_url),
        number_rate=lambda number: number_settings(number).number_rate.per_second,
        page_size=config.campaign_page_size,
        on_finished=lambda campaign: events().publish(campaign_finished(campaign)),
    )


def reset(keep_clients: bool = False) -> None:
    """Forget settings, clients and services (tests and local mode switch environments). Clients
    name no resource: an account replaced by another with the same names and endpoint can keep them
    (`keep_clients`), which spares building each again (tens of milliseconds of CPU apiece).
    Every service cached here is forgotten, whatever its name: a list to keep up would miss the next."""
    for cached in [value for value in globals().values() if callable(getattr(value, "cache_clear", None))]:
        cached.cache_clear()  # the services below and above, and `settings`
    if not keep_clients:
        aws.reset()


# The console's live channel (coexist/live): its settings are its own environment variables
# (named in coexist.resources), read by the three functions that serve it and by nothing else.


@lru_cache(maxsize=1)
def live_connections():
    import os

    from coexist.live.connections import ConnectionStore
    from coexist.resources import CONNECTIONS

    return ConnectionStore(aws.table(os.environ[CONNECTIONS.env_var]))


@lru_cache(maxsize=1)
def live_fanout():
    import os

    from coexist.live.fanout import Fanout
    from coexist.resources import LIVE_API_ID_ENV, LIVE_STAGE_ENV

    region = os.environ["AWS_REGION"]
    endpoint = f"https://{os.environ[LIVE_API_ID_ENV]}.execute-api.{region}.amazonaws.com/{os.environ[LIVE_STAGE_ENV]}"
    # The management client is made on the first post: a batch with no console open posts nothing.
    return Fanout(live_connections(), aws.ClientOnFirstCall("apigatewaymanagementapi", endpoint), live_changed_numbers())


@lru_cache(maxsize=1)
def live_changed_numbers():
    """The number of a streamed chat or message, read back from its table (the fan-out's). The chats
    table's Connect contact map items are not chats: no console hears of them."""
    import os

    from coexist.live.numbers import ChangedNumbers
    from coexist.resources import CHATS, CONTACT_MAP_PREFIX, MESSAGES

    return ChangedNumbers({spec.logical_id.lower(): aws.table(os.environ[spec.env_var]) for spec in (CHATS, MESSAGES)},
                          hidden={"chats": lambda key: str(key.get("chat_id", "")).startswith(CONTACT_MAP_PREFIX)})


@lru_cache(maxsize=1)
def live_directory():
    """The agent directory, for the numbers a console's person may see (the authorizer's)."""
    import os

    from coexist.resources import AGENTS
    from coexist.store.agents import AgentStore

    return AgentStore(aws.table(os.environ[AGENTS.env_var]))


@lru_cache(maxsize=1)
def id_token_verifier():
    import os

    # joserfc and cryptography ship in the live authorizer's layer only: never imported at the top.
    from coexist.live.tokens import IdTokenVerifier, fetch_jwks
    from coexist.resources import CONSOLE_CLIENT_ID_ENV, COGNITO_ISSUER_ENV

    issuer = os.environ[COGNITO_ISSUER_ENV]
    return IdTokenVerifier(issuer=issuer, client_id=os.environ[CONSOLE_CLIENT_ID_ENV], jwks=lambda: fetch_jwks(issuer))


def legacy_chat_stores(stage: str):
    """The stage's tables `python -m coexist.legacy_chats` re-keys chats into, by the names the
    stacks give them (stacks/config.py: `coexist-<stage>-<table>`)."""
    from coexist import resources
    from coexist.legacy_chats import Stores
    from coexist.store.chats import ChatRepository
    from coexist.store.contacts import ContactStore
    from coexist.store.customers import CustomerStore
    from coexist.store.messages import MessageStore

    def named(spec) -> object:
        return aws.table(f"coexist-{stage}-{spec.logical_id.lower()}")

    return Stores(CustomerStore(named(resources.CUSTOMERS)), ChatRepository(named(resources.CHATS)),
                  MessageStore(named(resources.MESSAGES)), ContactStore(named(resources.CONTACTS)))
