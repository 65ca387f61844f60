"""The emulator keeps DynamoDB's promises that Coexist relies on."""

from __future__ import annotations

import sys
import threading
from collections import defaultdict

import boto3
from botocore.exceptions import ClientError


def test_a_conditional_write_is_atomic_so_only_one_of_many_racing_writers_wins(aws):
    table = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"])
    winners: list[int] = []
    start = threading.Barrier(16)

    def claim(writer: int) -> None:
        start.wait()
        try:
            table.put_item(Item={"bucket_id": "claimed", "by": writer}, ConditionExpression="attribute_not_exists(bucket_id)")
            winners.append(writer)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a check-then-write race shows
    try:
        for _ in range(30):
            winners.clear()
            table.delete_item(Key={"bucket_id": "claimed"})
            threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(winners) == 1, winners
            assert table.get_item(Key={"bucket_id": "claimed"})["Item"]["by"] == winners[0]
    finally:
        sys.setswitchinterval(interval)



def test_a_read_waits_for_a_write_instead_of_failing_midway(aws):
    """moto serialises a read from live items: unguarded, a write landing while a scan walks the
    table fails the scan ("dictionary changed size during iteration", a 500 in local mode)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    name = aws.env["THROTTLE_TABLE"]
    table = aws.dynamodb.Table(name)
    for n in range(3):
        table.put_item(Item={"bucket_id": f"b{n}"})
    writes_during_the_scan: list[bool] = []
    writers: list[threading.Thread] = []

    class ItemsThatInviteAWrite(defaultdict):
        def values(self):
            for position, item in enumerate(super().values()):
                if position == 0:  # midway through the walk, another thread writes
                    writer = threading.Thread(target=table.put_item, kwargs={"Item": {"bucket_id": "late"}})
                    writer.start()
                    writers.append(writer)
                    writer.join(timeout=1)
                    writes_during_the_scan.append(not writer.is_alive())
                yield item

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][aws.dynamodb.meta.client.meta.region_name]
    moto_table = backend.tables[name]
    moto_table.items = ItemsThatInviteAWrite(dict, moto_table.items)
    assert len(table.scan()["Items"]) == 3  # the scan saw the table as it was when it began
    assert writes_during_the_scan == [False]  # the write waited for the scan to finish...
    writers[0].join(timeout=10)
    assert table.get_item(Key={"bucket_id": "late"})["Item"]  # ...and then landed


def test_a_refused_transaction_leaves_every_item_and_stream_as_it_was(aws):
    """The emulator backs up only the items a transaction names (moto copies whole tables): a
    transaction refused after some of its writes were applied puts each back — an update undone, a
    new item gone, a deleted one restored, in tables with and without a sort key — and the chats'
    stream keeps no record of it. Items it did not name are untouched."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    chats_name, accounts_name = aws.env["CHATS_TABLE"], aws.env["ACCOUNTS_TABLE"]
    chats, accounts = aws.dynamodb.Table(chats_name), aws.dynamodb.Table(accounts_name)
    chats.put_item(Item={"chat_id": "kept", "mode": "bot"})
    chats.put_item(Item={"chat_id": "updated", "mode": "bot"})
    accounts.put_item(Item={"waba_id": "w1", "sk": "STATE", "state": "connected"})
    chats.put_item(Item={"chat_id": "refuses", "mode": "agent"})
    stream = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[chats_name].stream_shard
    records = len(stream.items)

    try:
        boto3.client("dynamodb", region_name="us-east-1").transact_write_items(TransactItems=[
            {"Update": {"TableName": chats_name, "Key": {"chat_id": {"S": "updated"}}, "UpdateExpression": "SET #m = :m",
                        "ExpressionAttributeNames": {"#m": "mode"}, "ExpressionAttributeValues": {":m": {"S": "agent"}}}},
            {"Put": {"TableName": chats_name, "Item": {"chat_id": {"S": "new"}, "mode": {"S": "bot"}}}},
            {"Delete": {"TableName": accounts_name, "Key": {"waba_id": {"S": "w1"}, "sk": {"S": "STATE"}}}},
            {"ConditionCheck": {"TableName": chats_name, "Key": {"chat_id": {"S": "refuses"}}, "ConditionExpression": "#m = :bot",
                                "ExpressionAttributeNames": {"#m": "mode"}, "ExpressionAttributeValues": {":bot": {"S": "bot"}}}},
        ])
        raise AssertionError("the transaction should have been refused")
    except ClientError as error:
        assert error.response["Error"]["Code"] == "TransactionCanceledException"
        assert [r["Code"] for r in error.response["CancellationReasons"]] == ["None", "None", "None", "ConditionalCheckFailed"]

    assert chats.get_item(Key={"chat_id": "updated"})["Item"] == {"chat_id": "updated", "mode": "bot"}
    assert "Item" not in chats.get_item(Key={"chat_id": "new"})
    assert accounts.get_item(Key={"waba_id": "w1", "sk": "STATE"})["Item"]["state"] == "connected"
    assert chats.get_item(Key={"chat_id": "kept"})["Item"] == {"chat_id": "kept", "mode": "bot"}
    assert len(stream.items) == records


def test_a_transaction_that_holds_writes_every_item(aws):
    chats_name, accounts_name = aws.env["CHATS_TABLE"], aws.env["ACCOUNTS_TABLE"]
    boto3.client("dynamodb", region_name="us-east-1").transact_write_items(TransactItems=[
        {"Put": {"TableName": chats_name, "Item": {"chat_id": {"S": "c1"}, "mode": {"S": "bot"}}}},
        {"Put": {"TableName": accounts_name, "Item": {"waba_id": {"S": "w1"}, "sk": {"S": "STATE"}}}},
    ])
    assert aws.dynamodb.Table(chats_name).get_item(Key={"chat_id": "c1"})["Item"]["mode"] == "bot"
    assert "Item" in aws.dynamodb.Table(accounts_name).get_item(Key={"waba_id": "w1", "sk": "STATE"})


def test_a_queue_counts_its_waiting_delayed_and_in_flight_messages(aws):
    """moto's counts, worked out with one reading of the clock each (local/emulator.py)."""
    url = aws.sqs.create_queue(QueueName="counted")["QueueUrl"]
    for body in ("a", "b"):
        aws.sqs.send_message(QueueUrl=url, MessageBody=body)
    aws.sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    taken = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]
    assert len(taken) == 1
    counts = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesDelayed"],
            counts["ApproximateNumberOfMessagesNotVisible"]) == ("1", "1", "1")
    [left] = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert left["Body"] == ({"a", "b"} - {taken[0]["Body"]}).pop()


def test_each_event_reaches_the_rules_target_whole_and_its_paths_are_parsed_once(aws):
    """moto hands an event to a target through JSONPath expressions, parsed once (local/emulator.py)."""
    import json

    import jsonpath_ng.ext

    from local.emulator import EVENTS_RECORDED_ENV, recorded_events

    events = aws.session.client("events")

    def put(n: int) -> None:
        events.put_events(Entries=[{"Source": "coexist", "DetailType": "test.counted", "Detail": json.dumps({"n": n}),
                                    "EventBusName": aws.env["EVENT_BUS_NAME"]}])

    put(1)
    before = jsonpath_ng.ext.parse.cache_info()
    put(2)
    after = jsonpath_ng.ext.parse.cache_info()
    recorded = recorded_events(aws.sqs, aws.env[EVENTS_RECORDED_ENV])
    assert sorted((e["detail-type"], e["detail"]["n"]) for e in recorded) == [("test.counted", 1), ("test.counted", 2)]
    assert after.misses == before.misses and after.hits >= before.hits + 8  # the second event's paths: parsed before
