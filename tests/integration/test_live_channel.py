"""The deployed live channel against the emulated account: consoles connect and disconnect through
the connections function (with the numbers the authorizer says they may see), and a real write to
the chats and messages tables, read back from the table's own (keys-only) stream, reaches the
connected consoles that may see its number as a change event through the WebSocket API's
management endpoint. A connection API Gateway no longer has (410) is forgotten."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

from coexist import resources, wiring
from coexist.resources import CHATS, CONNECTIONS, MESSAGES
from functions.live_connections import handler as connections_function
from functions.live_fanout import handler as fanout_function
from tests.conftest import Context
from tests.integration.helpers import deliver
from tests.integration.test_ingest import CUSTOMER, NUMBER, TEXT_WAMID, text_message

ACCOUNT = "123456789012"
API_ID = "live0api1"
STAGE = "livestage"


@pytest.fixture
def channel(aws, monkeypatch):
    monkeypatch.setenv(resources.LIVE_API_ID_ENV, API_ID)
    monkeypatch.setenv(resources.LIVE_STAGE_ENV, STAGE)
    wiring.reset()
    client = aws.session.client("dynamodb")
    streams = {}
    for spec in (CHATS, MESSAGES):  # created as the data stack declares them: streaming keys only
        table = client.describe_table(TableName=aws.env[spec.env_var])["Table"]
        assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
        streams[spec.logical_id] = table["LatestStreamArn"]
    return streams


def connection_event(route: str, connection_id: str, sub: str = "agent-sub", numbers: str = "*") -> dict:
    return {"requestContext": {"routeKey": route, "connectionId": connection_id, "eventType": route.strip("$").upper(),
                               "authorizer": {"sub": sub, "principalId": sub, "numbers": numbers}}}


def connected(aws) -> dict[str, dict]:
    table = aws.dynamodb.Table(aws.env[CONNECTIONS.env_var])
    return {item["connection_id"]: item for item in table.scan()["Items"]}


def stream_event(aws, streams: dict[str, str]) -> dict:
    """What Lambda hands the fan-out: every record of both streams so far, as one batch."""
    # (The SDK's account-based endpoint for stream ARNs is not one the emulator answers.)
    client = aws.session.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
    records = []
    for arn in streams.values():
        shard = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for record in client.get_records(ShardIterator=iterator)["Records"]:
            records.append({**record, "eventSourceARN": arn})
    return {"Records": records}


def pushed(connection_id: str) -> list[dict]:
    """What the management endpoint delivered to one connection (moto keeps the bytes)."""
    connections = apigatewaymanagementapi_backends[ACCOUNT]["us-east-1"].connections
    if connection_id not in connections:
        return []
    data = connections[connection_id].data.decode()
    return [json.loads(line) for line in data.replace("}{", "}\n{").splitlines()]


def inbound_text(body: str) -> dict:
    return text_message(TEXT_WAMID, 1_900_000_000, body)


def test_connect_records_and_disconnect_forgets_a_console(aws, channel):
    assert connections_function.lambda_handler(connection_event("$connect", "conn-A"), Context()) == {"statusCode": 200}
    item = connected(aws)["conn-A"]
    assert item["user"] == "agent-sub"
    assert item["every_number"] is True and "numbers" not in item  # the authorizer said "*": an admin
    assert item["expires_at"] - item["connected_at"] == 2 * 3600  # API Gateway's longest connection
    assert connections_function.lambda_handler(connection_event("$disconnect", "conn-A"), Context()) == {"statusCode": 200}
    assert connected(aws) == {}


def test_an_agents_connection_keeps_the_numbers_it_may_see(aws, channel):
    connections_function.lambda_handler(connection_event("$connect", "conn-agent", numbers="222,111"), Context())
    connections_function.lambda_handler(connection_event("$connect", "conn-none", numbers=""), Context())
    assert connected(aws)["conn-agent"]["numbers"] == ["111", "222"]
    assert connected(aws)["conn-none"]["numbers"] == [] and "every_number" not in connected(aws)["conn-none"]


def test_a_change_reaches_only_the_consoles_that_may_see_its_number(aws, channel):
    for connection_id, numbers in (("conn-ours", NUMBER), ("conn-other", "999000111"), ("conn-admin", "*")):
        connections_function.lambda_handler(connection_event("$connect", connection_id, numbers=numbers), Context())
    deliver(aws, inbound_text("hello"))

    result = fanout_function.lambda_handler(stream_event(aws, channel), Context())

    assert result == {"sent": 4, "gone": 0, "failed": 0}  # two tables, to two of the three consoles
    assert sorted(e["by"] for e in pushed("conn-ours")) == sorted(e["by"] for e in pushed("conn-admin")) == ["chats", "messages"]
    assert pushed("conn-other") == []


def test_a_customer_message_reaches_every_connected_console_as_a_change_without_content(aws, channel):
    for connection_id in ("conn-A", "conn-B"):
        connections_function.lambda_handler(connection_event("$connect", connection_id), Context())
    deliver(aws, inbound_text("Private words about my bill"))
    event = stream_event(aws, channel)
    assert {r["eventSourceARN"] for r in event["Records"]} == set(channel.values())  # both tables changed

    result = fanout_function.lambda_handler(event, Context())

    assert result == {"sent": 4, "gone": 0, "failed": 0}  # two tables, two consoles
    for connection_id in ("conn-A", "conn-B"):
        events = pushed(connection_id)
        assert sorted(e["by"] for e in events) == ["chats", "messages"]
        assert all(set(e) == {"type", "by", "at"} and e["type"] == "changed" for e in events)
    raw = apigatewaymanagementapi_backends[ACCOUNT]["us-east-1"].connections["conn-A"].data.decode()
    assert "Private" not in raw and CUSTOMER not in raw


def test_with_no_console_open_a_batch_reads_no_item_of_the_changed_tables(aws, channel, monkeypatch):
    from coexist.live.numbers import ChangedNumbers

    deliver(aws, inbound_text("hello"), *(text_message(f"wamid.bulk{i}", 1_900_000_000 + i, "more") for i in range(5)))
    event = stream_event(aws, channel)
    asked = []
    real_of = ChangedNumbers.of
    monkeypatch.setattr(ChangedNumbers, "of", lambda self, table, keys: asked.append(table) or real_of(self, table, keys))

    assert fanout_function.lambda_handler(event, Context()) == {"sent": 0, "gone": 0, "failed": 0}
    assert event["Records"] and asked == []  # a bulk import or a campaign costs the fan-out one read per batch

    connections_function.lambda_handler(connection_event("$connect", "conn-late"), Context())
    assert fanout_function.lambda_handler(event, Context()) == {"sent": 2, "gone": 0, "failed": 0}
    assert asked  # with someone listening, the numbers are looked up


class GoneFor:
    """The management API as API Gateway answers for connections that closed without $disconnect."""

    def __init__(self, client, gone: set[str]):
        self.client, self.gone = client, gone

    def post_to_connection(self, ConnectionId: str, Data: bytes):  # noqa: N803 - boto3's names
        if ConnectionId in self.gone:
            raise ClientError({"Error": {"Code": "GoneException", "Message": "gone"},
                               "ResponseMetadata": {"HTTPStatusCode": 410}}, "PostToConnection")
        return self.client.post_to_connection(ConnectionId=ConnectionId, Data=Data)


def test_a_gone_connection_is_deleted_and_the_others_still_receive(aws, channel, monkeypatch):
    for connection_id in ("conn-live", "conn-gone"):
        connections_function.lambda_handler(connection_event("$connect", connection_id), Context())
    fanout = wiring.live_fanout()
    monkeypatch.setattr(fanout, "_management", GoneFor(fanout._management, {"conn-gone"}))
    deliver(aws, inbound_text("hello"))

    result = fanout_function.lambda_handler(stream_event(aws, channel), Context())

    assert result["gone"] == 1  # the first event finds it gone and forgets it; the second never tries
    assert result["sent"] == 2
    assert set(connected(aws)) == {"conn-live"}
    assert {e["by"] for e in pushed("conn-live")} == {"chats", "messages"}


def test_another_error_leaves_the_connection_and_is_counted(aws, channel, monkeypatch):
    connections_function.lambda_handler(connection_event("$connect", "conn-A"), Context())

    class Throttled:
        def post_to_connection(self, **_):
            raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "slow down"}}, "PostToConnection")

    monkeypatch.setattr(wiring.live_fanout(), "_management", Throttled())
    deliver(aws, inbound_text("hello"))
    result = fanout_function.lambda_handler(stream_event(aws, channel), Context())
    assert result == {"sent": 0, "gone": 0, "failed": 2}
    assert set(connected(aws)) == {"conn-A"}


def test_local_mode_follows_the_same_streams_from_the_latest_record_on_without_piling_up_iterators(aws, channel):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    from local.live import StreamFollower, forget_shard_iterator

    deliver(aws, inbound_text("before local mode listened"))
    client = aws.session.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
    follower = StreamFollower(client, list(channel.values()), push=lambda records: None, forget=forget_shard_iterator)
    assert follower.read_once() == []  # from the latest record on, as the deployed event source starts

    deliver(aws, text_message("wamid.after", 1_900_000_100, "after"))
    records = follower.read_once()
    assert {r["eventSourceARN"] for r in records} == set(channel.values())
    assert all(set(r["dynamodb"]["Keys"]) <= {"chat_id", "id"} for r in records)  # keys only, as Lambda hands them
    iterators = dynamodbstreams_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].shard_iterators
    held = len(iterators)
    for _ in range(20):
        assert follower.read_once() == []
    assert len(iterators) == held  # each used iterator is dropped


def test_local_mode_follows_a_stream_again_after_a_read_it_could_not_make(aws, channel):
    from local.live import StreamFollower, forget_shard_iterator

    client = aws.session.client("dynamodbstreams", endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
    follower = StreamFollower(client, list(channel.values()), push=lambda records: None, forget=forget_shard_iterator)
    broken = next(iter(channel.values()))
    follower._iterators[broken] = "an iterator the emulator never handed out"
    assert follower.read_once() == []  # logged; that stream followed again from its latest record
    deliver(aws, text_message("wamid.after-the-failure", 1_900_000_200, "after"))
    assert {r["eventSourceARN"] for r in follower.read_once()} == set(channel.values())
