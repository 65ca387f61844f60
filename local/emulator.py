"""The AWS side of local mode: fake credentials, moto, and Coexist's resources created inside it.

`create_resources` builds the same tables, bucket, queues and topic as the CDK stacks, from the
shared definitions in `coexist.resources`, against whatever boto3 session it is given. Local mode
calls it inside `mock_aws` + a moto server; integration tests and benchmarks call it under a plain
`mock_aws()`:

    with mock_aws():
        env = create_resources(boto3.Session(region_name="us-east-1"), prefix="coexist-test")
        monkeypatch.setattr(os, "environ", {**os.environ, **env})  # or os.environ.update(env)

It returns `{env var: value}`: every table's `spec.env_var`, `ARCHIVE_BUCKET`, `INBOUND_QUEUE_URL`,
`RAW_ARCHIVE_QUEUE_URL`, …, plus local-only names (`INBOUND_DLQ_URL`, `RAW_ARCHIVE_DLQ_URL`,
`SOCIAL_MESSAGING_TOPIC_ARN`, …) that no handler reads.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import threading

import boto3
from coexist import resources

REGION = "us-east-1"
# Set before any boto3 client exists, so nothing can reach a real account by accident.
FAKE_AWS_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
DLQ_URL_ENV = "INBOUND_DLQ_URL"
RAW_ARCHIVE_DLQ_URL_ENV = "RAW_ARCHIVE_DLQ_URL"
OUTBOUND_DLQ_URL_ENV = resources.OUTBOUND_DLQ_ENV
SOCIAL_TOPIC_ENV = "SOCIAL_MESSAGING_TOPIC_ARN"
EVENTS_RECORDED_ENV = "EVENTS_RECORDED_QUEUE_URL"  # local only: every domain event put on the bus
DLQ_RETENTION_S = 14 * 24 * 3600  # the SQS maximum: time to inspect and redrive a parked envelope
_patching = threading.Lock()
_item_writes = threading.RLock()  # one item write at a time, across every emulated table


def use_fake_aws_credentials(environ=os.environ) -> None:
    """Overwrite (not default) credentials: a developer's real profile must never be used here."""
    environ.pop("AWS_PROFILE", None)
    environ.update(FAKE_AWS_ENV)


def table_name(prefix: str, spec: resources.TableSpec) -> str:
    return f"{prefix}-{spec.logical_id.lower()}"


def atomic_item_writes() -> None:
    """Make moto's DynamoDB item writes atomic, and its reads never see half a write, as DynamoDB's.

    DynamoDB checks a write's condition and applies it as one step; moto checks, then writes, in
    the caller's thread, so two threads can both pass the same condition. Pacing (distinct slots)
    and idempotency (one message per key) rest on that promise, so the emulator must keep it.
    moto also updates an item in place and serialises a query's items while answering it: a read
    racing a write could fail ("dictionary changed size during iteration") or return a torn item.
    So every DynamoDB request is answered under the same lock as the backend's writes (which the
    Step Functions emulator calls directly, without a request).

    A transaction backs up only the items it names (`_backing_up_named_items`), not every table it
    names, which moto deep-copies whole: a cost that grew with each table until a test writing
    a few hundred chats spent most of its time copying them.
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    with _patching:
        if getattr(DynamoDBBackend, "_coexist_atomic_writes", False):
            return
        DynamoDBBackend.transact_write_items = _backing_up_named_items(DynamoDBBackend.transact_write_items)
        for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
            setattr(DynamoDBBackend, name, _under_write_lock(getattr(DynamoDBBackend, name)))
        DynamoHandler.call_action = _under_write_lock(DynamoHandler.call_action)
        DynamoDBBackend._coexist_atomic_writes = True


def _under_write_lock(write):
    @functools.wraps(write)
    def locked(self, *args, **kwargs):
        with _item_writes:
            return write(self, *args, **kwargs)

    return locked


def _backing_up_named_items(transact):
    """moto's `transact_write_items`, rolled back by restoring the items it names (and the table
    streams' records it added) instead of the deep copies of whole tables it makes; run under the
    write lock, so nothing else writes meanwhile."""
    import moto.dynamodb.models as backend_module

    @functools.wraps(transact)
    def transact_write_items(self, transact_items):
        named, streams = _named_items(self, transact_items), _stream_lengths(self, transact_items)
        backend_module.copy = _TablesKept
        try:
            return transact(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(named):
                _put_back(table, hash_key, range_key, item)
            for shard, length in streams:
                del shard.items[length:]
            raise
        finally:
            backend_module.copy = copy

    return transact_write_items


class _TablesKept:
    """The `copy` module as moto's DynamoDB backend sees it during a transaction: its backup of a
    table is the table itself (so its own rollback changes nothing); every other copy is a copy."""

    @staticmethod
    def deepcopy(value, memo=None):
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _named_items(backend, transact_items) -> list[tuple]:
    """(table, hash key, range key, a copy of the item or None) for each item a transaction names."""
    from moto.dynamodb.exceptions import MockValidationException

    named = []
    for element in transact_items:
        for operation, request in element.items():
            table = backend.tables.get(request.get("TableName"))
            key = request.get("Item") if operation == "Put" else request.get("Key")  # a put's key is in its item
            if table is None or not key:
                continue  # moto refuses it before writing anything
            try:
                hash_key, range_key = backend.get_keys_value(table, key)
            except MockValidationException:
                continue  # a key attribute missing: refused the same way
            named.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
    return named


def _stream_lengths(backend, transact_items) -> list[tuple]:
    tables = {request.get("TableName") for element in transact_items for request in element.values()}
    return [(table.stream_shard, len(table.stream_shard.items)) for name in tables
            if (table := backend.tables.get(name)) is not None and table.stream_shard is not None]


def _put_back(table, hash_key, range_key, item) -> None:
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


def queue_counts_read_the_clock_once() -> None:
    """moto works out a queue's message counts on every SendMessage (and receive), asking the clock
    again for each message it holds and each count: a queue that keeps what it is sent (the
    recorded domain events) made every send slower than the last. The same counts, with one
    reading of the clock per count."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    with _patching:
        if getattr(Queue, "_coexist_counts", False):
            return

        def delayed(queue) -> int:
            now = unix_time_millis()
            return sum(1 for m in queue._messages if now < m.delayed_until)

        def not_visible(queue) -> int:
            now = unix_time_millis()
            return sum(1 for m in queue._messages if not now > m.visible_at)

        def ready(queue) -> list:
            now = unix_time_millis()
            return [m for m in queue._messages if now > m.visible_at and not now < m.delayed_until]

        Queue.approximate_number_of_messages_delayed = property(delayed)
        Queue.approximate_number_of_messages_not_visible = property(not_visible)
        Queue.messages = property(ready)
        Queue._coexist_counts = True


def event_paths_parsed_once() -> None:
    """moto hands each event to a rule's target through eight JSONPath expressions, and parses each
    again for every event, building the parser's tables each time: with a rule recording every
    event, two thirds of a PutEvents call's time. An expression parsed is kept (they never change)."""
    from functools import lru_cache

    import jsonpath_ng.ext

    with _patching:
        if getattr(jsonpath_ng.ext.parse, "cache_info", None):
            return
        jsonpath_ng.ext.parse = lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


def create_resources(session: boto3.session.Session | None = None, prefix: str = "coexist-local") -> dict[str, str]:
    """Create Coexist's data resources in the (emulated) account behind `session`."""
    atomic_item_writes()
    queue_counts_read_the_clock_once()
    event_paths_parsed_once()
    session = session or boto3.Session(region_name=REGION)
    env: dict[str, str] = {}
    dynamodb = session.client("dynamodb")
    for spec in resources.TABLES:
        name = table_name(prefix, spec)
        dynamodb.create_table(**spec.create_table_kwargs(name))
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
            )
        env[spec.env_var] = name

    env[resources.ARCHIVE_BUCKET_ENV] = _create_archive_bucket(session.client("s3"), f"{prefix}-archive")
    env[resources.AUDIT_BUCKET_ENV] = _create_audit_bucket(session.client("s3"), f"{prefix}-audit")
    env[resources.EXPORTS_BUCKET_ENV] = f"{prefix}-export-files"  # not the queue's name: each resource its own
    session.client("s3").create_bucket(Bucket=env[resources.EXPORTS_BUCKET_ENV])
    sqs = session.client("sqs")
    queue_url, queue_arn, dlq_url = _create_inbound_queue(sqs, f"{prefix}-inbound")
    env[resources.INBOUND_QUEUE_ENV] = queue_url
    env[DLQ_URL_ENV] = dlq_url
    env[resources.RAW_ARCHIVE_QUEUE_ENV], _, env[RAW_ARCHIVE_DLQ_URL_ENV] = _create_inbound_queue(
        sqs, f"{prefix}-raw-archive", resources.RAW_ARCHIVE_VISIBILITY_TIMEOUT_S, resources.RAW_ARCHIVE_MAX_RECEIVES)
    outbound_url, outbound_dlq_url = _create_outbound_queue(sqs, f"{prefix}-outbound")
    env[resources.EXPORTS_QUEUE_ENV] = _create_exports_queue(sqs, f"{prefix}-exports")
    env[resources.OUTBOUND_QUEUE_ENV] = outbound_url
    env[OUTBOUND_DLQ_URL_ENV] = outbound_dlq_url
    env[SOCIAL_TOPIC_ENV] = _create_social_messaging_topic(
        session.client("sns"), sqs, f"{prefix}-social-messaging", queue_url, queue_arn
    )
    env[resources.OPERATIONS_TOPIC_ENV] = session.client("sns").create_topic(Name=f"{prefix}-operations")["TopicArn"]
    env[resources.EVENT_BUS_ENV], env[EVENTS_RECORDED_ENV] = _create_event_bus(session.client("events"), sqs, f"{prefix}-events")
    env.update(_create_reminder_schedules(session.client("scheduler"), sqs, prefix))
    env.update(_create_idle_schedules(session.client("scheduler"), sqs, prefix))
    env[resources.CAMPAIGNS_QUEUE_ENV] = _create_campaigns_queue(sqs, f"{prefix}-campaigns")
    return env


def reminders_function_name(prefix: str) -> str:
    return f"{prefix}-reminders"


def _create_reminder_schedules(scheduler, sqs, prefix: str) -> dict[str, str]:
    """The reminders' schedule group and what their schedules name: the reminders function, the role
    Scheduler would invoke it with, the dead-letter queue. Local mode's stand-in fires them."""
    return _create_schedule_group(scheduler, sqs, f"{prefix}-reminders", reminders_function_name(prefix), (
        resources.REMINDER_SCHEDULE_GROUP_ENV, resources.REMINDER_TARGET_ARN_ENV, resources.REMINDER_SCHEDULER_ROLE_ARN_ENV,
        resources.REMINDER_DLQ_ARN_ENV))


def _create_idle_schedules(scheduler, sqs, prefix: str) -> dict[str, str]:
    """The bot phases' idle timers' schedule group and what their schedules name: the conversation
    function, the role Scheduler would invoke it with, the dead-letter queue. Local mode's stand-in
    fires them."""
    return _create_schedule_group(scheduler, sqs, f"{prefix}-conversation-idle", f"{prefix}-conversation", (
        resources.IDLE_SCHEDULE_GROUP_ENV, resources.IDLE_TARGET_ARN_ENV, resources.IDLE_SCHEDULER_ROLE_ARN_ENV,
        resources.IDLE_DLQ_ARN_ENV))


def _create_schedule_group(scheduler, sqs, group: str, function_name: str, env_names: tuple[str, str, str, str]) -> dict[str, str]:
    """A group of one-time schedules that invoke `function_name`, its dead-letter queue, and the env
    (group, target, Scheduler's role, dead-letter queue) the stacks give whoever makes them."""
    from local.lambdas import ACCOUNT_ID

    scheduler.create_schedule_group(Name=group)
    dlq_url = sqs.create_queue(QueueName=f"{group}-dlq", Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)})["QueueUrl"]
    values = (group, f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}", f"arn:aws:iam::{ACCOUNT_ID}:role/{group}-scheduler",
              queue_arn(sqs, dlq_url))
    return dict(zip(env_names, values))


def _create_event_bus(events, sqs, name: str) -> tuple[str, str]:
    """The domain events' bus, with a rule recording every Coexist event on a queue (where a
    deployment would have its CRM's API destination), so tests and `make run` can read them."""
    events.create_event_bus(Name=name)
    recorded_url = sqs.create_queue(QueueName=f"{name}-recorded", Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)})["QueueUrl"]
    events.put_rule(Name=f"{name}-record", EventBusName=name, EventPattern=json.dumps({"source": [resources.EVENT_SOURCE]}))
    events.put_targets(Rule=f"{name}-record", EventBusName=name, Targets=[{"Id": "recorded", "Arn": queue_arn(sqs, recorded_url)}])
    return name, recorded_url


def recorded_events(sqs, queue_url: str, wait_s: int = 0) -> list[dict]:
    """The events the local bus recorded since the last call (each is read once)."""
    found = []
    while True:
        answer = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s if not found else 0)
        messages = answer.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _create_campaigns_queue(sqs, name: str) -> str:
    """Standard, as deployed: each page of a campaign is a message, delayed until it is due."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)})["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": resources.CAMPAIGNS_MAX_RECEIVES}
    return sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": str(resources.CAMPAIGNS_VISIBILITY_TIMEOUT_S), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]


def _create_archive_bucket(s3, name: str) -> str:
    # Object Lock is what makes the archive a WORM record; it can only be switched on at creation.
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


AUDIT_LOCAL_RETENTION_DAYS = 1  # local state lives in memory; the lock is there to behave as deployed


def _create_audit_bucket(s3, name: str) -> str:
    """The audit trail's copy: Object Lock in compliance mode by default, as deployed."""
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": AUDIT_LOCAL_RETENTION_DAYS}},
    })
    return name


def _create_inbound_queue(sqs, name: str, visibility_timeout_s: int = resources.INBOUND_VISIBILITY_TIMEOUT_S,
                          max_receives: int = resources.INBOUND_MAX_RECEIVES) -> tuple[str, str, str]:
    """A standard queue with its dead-letter queue: the inbound queue's, and the raw archive's."""
    # The DLQ must exist first: the redrive policy names it by ARN.
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
    )["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives}
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return queue_url, queue_arn(sqs, queue_url), dlq_url


def _create_outbound_queue(sqs, name: str) -> tuple[str, str]:
    """FIFO, as deployed: one message group per number and recipient keeps each customer's order."""
    fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq.fifo", Attributes={**fifo, "MessageRetentionPeriod": str(DLQ_RETENTION_S)}
    )["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": resources.OUTBOUND_MAX_RECEIVES}
    queue_url = sqs.create_queue(
        QueueName=f"{name}.fifo",
        Attributes={**fifo, "VisibilityTimeout": str(resources.OUTBOUND_VISIBILITY_TIMEOUT_S), "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    return queue_url, dlq_url


def _create_exports_queue(sqs, name: str) -> str:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)})["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": resources.EXPORTS_MAX_RECEIVES}
    return sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(resources.EXPORTS_VISIBILITY_TIMEOUT_S), "RedrivePolicy": json.dumps(redrive),
    })["QueueUrl"]


def _create_social_messaging_topic(sns, sqs, name: str, queue_url: str, queue_arn_: str) -> str:
    """Stands in for AWS End User Messaging Social, which publishes WhatsApp events to SNS."""
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    # Moto does not enforce queue policies; set it anyway so the wiring matches a deployment.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn_,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn_,
        Attributes={"RawMessageDelivery": "true"},
    )
    return topic_arn


def queue_arn(sqs, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
