"""The cost model's DynamoDB write units (benchmarks/dynamodb_units.py): sized from what each write
touches, indexes included, as DynamoDB bills on-demand writes, counted by the request counter for the
function making the write."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from benchmarks.aws_requests import RequestCounter

TOKEN_BYTES = 1024


@pytest.fixture
def counted():
    """A table like the chats (an inbox index on number and recency, all attributes projected), and
    a function's write units counted as the request counter counts them."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="chats", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "chat_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": t} for a, t in
                                  (("chat_id", "S"), ("phone_number_id", "S"), ("last_message_at", "N"))],
            GlobalSecondaryIndexes=[{"IndexName": "by_recent", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "phone_number_id", "KeyType": "HASH"},
                                                   {"AttributeName": "last_message_at", "KeyType": "RANGE"}]}],
        )
        # The function making the calls is named to the counter only: the IAM contract's recorder
        # would take these writes to a table of the test's for the ingest function's.
        running = {"function": "ingest"}
        counter = RequestCounter(token_bytes=TOKEN_BYTES, function_of=lambda: running["function"])
        client.meta.events.register("before-call", counter._before_call)
        client.meta.events.register("after-call", counter._after_call)

        def units(write, *args, **kwargs) -> int:
            before = counter.units[("ingest", "wru")]
            try:
                write(*args, **kwargs)
            except ClientError as error:
                assert error.response["Error"]["Code"] in {"ConditionalCheckFailedException", "TransactionCanceledException"}
            return counter.units[("ingest", "wru")] - before

        units.client = client
        units.running = running
        yield units


def _chat(chat_id="c1", **attributes) -> dict:
    return {"chat_id": {"S": chat_id}} | {k: ({"N": str(v)} if isinstance(v, int) else {"S": v}) for k, v in attributes.items()}


def test_a_small_item_outside_every_index_is_one_unit(counted):
    assert counted(counted.client.put_item, TableName="chats", Item=_chat(mode="bot")) == 1


def test_an_item_over_a_kilobyte_pays_per_kilobyte_and_so_does_its_index_entry(counted):
    item = _chat(phone_number_id="p1", last_message_at=1, note="x" * 1500)
    assert counted(counted.client.put_item, TableName="chats", Item=item) == 2 + 2


def test_moving_to_other_index_keys_deletes_one_entry_and_puts_another(counted):
    counted.client.put_item(TableName="chats", Item=_chat(phone_number_id="p1", last_message_at=1))
    moved = counted(counted.client.update_item, TableName="chats", Key=_chat(), UpdateExpression="SET last_message_at = :t",
                    ExpressionAttributeValues={":t": {"N": "2"}})
    assert moved == 1 + 2


def test_changing_a_projected_attribute_rewrites_the_entry_once(counted):
    counted.client.put_item(TableName="chats", Item=_chat(phone_number_id="p1", last_message_at=1))
    changed = counted(counted.client.update_item, TableName="chats", Key=_chat(), UpdateExpression="SET #m = :m",
                      ExpressionAttributeNames={"#m": "mode"}, ExpressionAttributeValues={":m": {"S": "agent"}})
    assert changed == 1 + 1


def test_a_refused_condition_pays_for_the_item_and_changes_no_index(counted):
    counted.client.put_item(TableName="chats", Item=_chat(phone_number_id="p1", last_message_at=1, note="x" * 1500))
    refused = counted(counted.client.update_item, TableName="chats", Key=_chat(), UpdateExpression="SET last_message_at = :t",
                      ConditionExpression="last_message_at > :t", ExpressionAttributeValues={":t": {"N": "2"}})
    assert refused == 2


def test_a_task_token_weighs_what_a_deployed_one_does(counted):
    """The emulator's tokens are short; a chat holding one is priced as if it held AWS's."""
    counted.client.put_item(TableName="chats", Item=_chat(mode="bot"))
    parked = counted(counted.client.update_item, TableName="chats", Key=_chat(), UpdateExpression="SET workflow_token = :t",
                     ExpressionAttributeValues={":t": {"S": "short"}})
    assert parked == 2  # the item after the write is over a kilobyte


def test_a_token_held_by_its_reference_weighs_what_the_reference_does(counted):
    counted.client.put_item(TableName="chats", Item=_chat(mode="bot"))
    parked = counted(counted.client.update_item, TableName="chats", Key=_chat(), UpdateExpression="SET workflow_token = :t",
                     ExpressionAttributeValues={":t": {"S": "ref:PwiqzhIu4jaEMsHKI6BJvA"}})
    assert parked == 1


def test_a_transaction_pays_twice_for_each_item(counted):
    written = counted(counted.client.transact_write_items, TransactItems=[
        {"Put": {"TableName": "chats", "Item": _chat("c1")}},
        {"Put": {"TableName": "chats", "Item": _chat("c2", phone_number_id="p1", last_message_at=1)}},
    ])
    assert written == 2 * 2 + 1  # and the second chat's new index entry


def test_a_batch_pays_for_each_item(counted):
    written = counted(counted.client.batch_write_item, RequestItems={"chats": [
        {"PutRequest": {"Item": _chat(f"c{i}", note="x" * 1500)}} for i in range(3)]})
    assert written == 3 * 2


def test_writes_outside_a_function_are_not_counted(counted):
    counted.running["function"] = None
    assert counted(counted.client.put_item, TableName="chats", Item=_chat(mode="bot")) == 0
