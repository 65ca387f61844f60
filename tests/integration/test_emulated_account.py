"""Each test's emulated account is a copy of one made once per process (tests/pristine.py): every
resource as created, nothing a previous account wrote, and the copies independent of each other."""

from __future__ import annotations

import json

import pytest

from coexist import resources
from tests.conftest import emulated_account


def _write_everywhere(account) -> None:
    account.dynamodb.Table(account.env["CHATS_TABLE"]).put_item(Item={"chat_id": "left-behind", "phone_number_id": "1"})
    account.sqs.send_message(QueueUrl=account.env["INBOUND_QUEUE_URL"], MessageBody="left behind")
    account.s3.put_object(Bucket=account.env["EXPORTS_BUCKET"], Key="left-behind", Body=b"x")


def _nothing_written(account) -> bool:
    chats = account.dynamodb.Table(account.env["CHATS_TABLE"]).scan()["Items"]
    queued = account.sqs.get_queue_attributes(QueueUrl=account.env["INBOUND_QUEUE_URL"],
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    objects = account.s3.list_objects_v2(Bucket=account.env["EXPORTS_BUCKET"]).get("KeyCount", 0)
    return chats == [] and queued["ApproximateNumberOfMessages"] == "0" and objects == 0


def test_an_account_starts_empty_whatever_the_one_before_wrote():
    with pytest.MonkeyPatch.context() as patch:
        with emulated_account(patch) as first:
            assert _nothing_written(first)
            _write_everywhere(first)
            assert not _nothing_written(first)
        with emulated_account(patch) as second:
            assert _nothing_written(second)
            _write_everywhere(second)
        with emulated_account(patch) as third:  # the copy kept was not changed by the second's writes
            assert _nothing_written(third)


def test_every_resource_comes_back_as_it_was_created(aws):
    """What creation set beyond names: indexes, TTL, redrive, FIFO, Object Lock, subscriptions."""
    chats = aws.dynamodb.meta.client.describe_table(TableName=aws.env["CHATS_TABLE"])["Table"]
    assert {i["IndexName"] for i in chats["GlobalSecondaryIndexes"]} == {i.name for i in resources.CHATS.indexes}
    ttl = aws.dynamodb.meta.client.describe_time_to_live(TableName=aws.env["MESSAGES_TABLE"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", resources.MESSAGES.ttl_attribute)

    inbound = aws.sqs.get_queue_attributes(QueueUrl=aws.env["INBOUND_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert json.loads(inbound["RedrivePolicy"])["maxReceiveCount"] == resources.INBOUND_MAX_RECEIVES
    outbound = aws.sqs.get_queue_attributes(QueueUrl=aws.env["OUTBOUND_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert outbound["FifoQueue"] == "true"

    lock = aws.s3.get_object_lock_configuration(Bucket=aws.env["AUDIT_BUCKET"])["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"

    # End User Messaging Social's topic still delivers to the inbound queue.
    sns = aws.session.client("sns")
    sns.publish(TopicArn=aws.env["SOCIAL_MESSAGING_TOPIC_ARN"], Message="from the topic")
    received = aws.sqs.receive_message(QueueUrl=aws.env["INBOUND_QUEUE_URL"])["Messages"]
    assert [m["Body"] for m in received] == ["from the topic"]


def test_a_queue_of_a_copied_account_wakes_a_waiting_receive(aws):
    """The copied queues hold working locks: a long poll returns as soon as a message arrives."""
    import threading
    import time

    threading.Timer(0.3, lambda: aws.sqs.send_message(QueueUrl=aws.env["INBOUND_QUEUE_URL"], MessageBody="late")).start()
    started = time.monotonic()
    received = aws.sqs.receive_message(QueueUrl=aws.env["INBOUND_QUEUE_URL"], WaitTimeSeconds=5).get("Messages", [])
    assert [m["Body"] for m in received] == ["late"]
    assert time.monotonic() - started < 4
