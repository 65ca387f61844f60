"""The audit trail over the real API handler and tables: every read of and action on a chat is an
entry (who, role, what, which chat, when, from where, allowed or refused), admins list them, nobody
can change them, an action the trail cannot record does not happen, and the stream's copy lands in
the Object Lock bucket as JSON lines."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from coexist import wiring
from functions.audit_archive import handler as audit_archive_function
from tests.conftest import Context
from tests.integration.helpers import chat_of
from tests.integration.test_api_access import CHAT, SEND, assign, call, deployed  # noqa: F401 - the fixture
from tests.integration.test_ingest import CUSTOMER, NUMBER

BROWSER = {"User-Agent": "Mozilla/5.0 (audit test)"}


def trail(**filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = call("ada", "GET", f"/api/audit?{query}")
    assert status == 200, body
    return body["items"]


def test_reads_and_actions_of_two_agents_are_recorded_with_who_what_where(deployed):
    chat_id = chat_of(NUMBER, CUSTOMER)
    assert call("ana", "GET", f"/api/chats/{CHAT}", headers=BROWSER)[0] == 200
    assert call("ana", "GET", f"/api/chats/{CHAT}/messages", headers=BROWSER)[0] == 200
    assert call("ben", "POST", f"/api/chats/{CHAT}/messages", SEND, headers=BROWSER)[0] == 202
    assert call("ben", "POST", f"/api/chats/{CHAT}/close")[0] == 200

    entries = trail(chat_id=chat_id)
    seen = [(e["actor"], e["action"], e["outcome"], e["request"].split(" ")[0]) for e in reversed(entries)]
    assert seen == [
        ("ana", "read_chat", "allowed", "GET"),
        ("ana", "read_chat", "allowed", "GET"),
        ("ben", "send", "allowed", "POST"),
        ("ben", "close", "allowed", "POST"),
    ]
    assert [e["request"] for e in entries[2:]] == [f"GET /api/chats/{chat_id}/messages", f"GET /api/chats/{chat_id}"]
    for entry in entries:
        assert entry["chat_id"] == chat_id
        assert entry["role"] == "agent"
        assert entry["source_ip"] == "127.0.0.1"
        assert entry["detail"]["phone_number_id"] == NUMBER
    assert {e["user_agent"] for e in entries[1:]} == {"Mozilla/5.0 (audit test)"}
    times = [e["at"] for e in entries]
    assert times == sorted(times, reverse=True)  # newest first
    assert datetime.fromisoformat(times[0]) > datetime.now(timezone.utc) - timedelta(minutes=5)


def test_a_refused_access_is_recorded_as_refused_with_the_reason(deployed):
    assert call("zed", "GET", f"/api/chats/{CHAT}")[0] == 403  # another number's agent
    assert call("ana", "POST", f"/api/chats/{CHAT}/close")[0] == 403  # ben holds the chat
    refused = trail(action="read_chat", user="zed")
    assert [(e["actor"], e["outcome"]) for e in refused] == [("zed", "refused")]
    assert "not assigned to you" in refused[0]["reason"]
    [close] = trail(user="ana", action="close")
    assert close["outcome"] == "refused" and "assigned to another agent" in close["reason"]


def test_directory_changes_and_reading_the_trail_are_recorded_and_only_admins_read_it(deployed):
    assert call("ada", "POST", "/api/agents", {"agent_id": "newbie", "name": "New"})[0] == 201
    [change] = trail(action="write_directory")
    assert change["actor"] == "ada" and change["role"] == "admin" and change["detail"] == {"agent_id": "newbie"}
    status, body = call("sue", "GET", "/api/audit")
    assert status == 403 and body["code"] == "forbidden"
    reads = trail(action="read_audit")
    assert {(e["actor"], e["outcome"]) for e in reads} >= {("sue", "refused"), ("ada", "allowed")}


def test_the_trail_is_filtered_by_user_action_and_time_and_paged_newest_first(deployed):
    for _ in range(3):
        call("ana", "GET", f"/api/chats/{CHAT}")
    call("sue", "GET", f"/api/chats/{CHAT}")
    first = trail(user="ana", limit=2)
    assert len(first) == 2 and all(e["actor"] == "ana" for e in first)
    status, page = call("ada", "GET", "/api/audit?user=ana&limit=2")
    status, rest = call("ada", "GET", f"/api/audit?user=ana&limit=2&cursor={page['next']}")
    assert status == 200 and [e["actor"] for e in rest["items"]] == ["ana"]
    assert {e["entry_id"] for e in page["items"]}.isdisjoint(e["entry_id"] for e in rest["items"])
    # Without a user or chat, entries are read day by day, newest first.
    everyone = trail(action="read_chat")
    assert [e["actor"] for e in everyone][:4] == ["sue", "ana", "ana", "ana"]
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert trail(action="read_chat", **{"from": future}) == []
    status, body = call("ada", "GET", "/api/audit?from=yesterday")
    assert status == 400 and body["code"] == "bad_request"
    status, body = call("ada", "GET", "/api/audit?cursor=bm90LWEtY3Vyc29y")
    assert status == 400 and body["code"] == "bad_request"


@pytest.mark.parametrize("method, path", [
    ("PUT", "/api/audit"), ("DELETE", "/api/audit"), ("POST", "/api/audit"), ("PATCH", "/api/audit"),
    ("DELETE", "/api/audit/any-entry"), ("PUT", "/api/audit/any-entry"),
])
def test_no_route_changes_or_removes_an_entry(deployed, method, path):
    call("ana", "GET", f"/api/chats/{CHAT}")
    before = trail(user="ana")
    status, body = call("ada", method, path, {"outcome": "allowed"})
    assert status == 405 and body["code"] == "method_not_allowed"
    assert trail(user="ana") == before


def test_an_action_the_trail_cannot_record_does_not_happen(deployed):
    """Fail closed: with the audit table unreachable the send is refused and nothing is stored."""
    before = deployed.dynamodb.Table(deployed.env["MESSAGES_TABLE"]).scan()["Count"]
    deployed.dynamodb.Table(deployed.env["AUDIT_TABLE"]).delete()
    status, body = call("ben", "POST", f"/api/chats/{CHAT}/messages", SEND)
    assert status == 503 and body["code"] == "audit_unavailable"
    assert deployed.dynamodb.Table(deployed.env["MESSAGES_TABLE"]).scan()["Count"] == before


def test_entries_are_written_only_if_new(deployed):
    from botocore.exceptions import ClientError

    call("ana", "GET", f"/api/chats/{CHAT}")
    table = deployed.dynamodb.Table(deployed.env["AUDIT_TABLE"])
    [item] = [i for i in table.scan()["Items"] if i["actor"] == "ana"]
    from coexist.domain.audit import AuditEntry, AuditUnavailable, Caller, Outcome

    entry = AuditEntry(Caller("mallory", "admin"), "read_chat", Outcome.ALLOWED, entry_id=item["entry_id"],
                       at=datetime.fromisoformat(item["recorded_at"]))
    with pytest.raises(AuditUnavailable) as raised:
        wiring.audit_log().record(entry)
    assert isinstance(raised.value.__cause__, ClientError)
    assert table.get_item(Key={"day": item["day"], "at": item["at"]})["Item"]["actor"] == "ana"


def stream_records(aws) -> list[dict]:
    """The audit table's stream as Lambda's event source mapping would deliver it."""
    from botocore.config import Config

    # The regional endpoint (the emulator does not serve the account-based one for streams).
    streams = aws.session.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled"))
    arn = aws.session.client("dynamodb").describe_table(TableName=aws.env["AUDIT_TABLE"])["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records += streams.get_records(ShardIterator=iterator)["Records"]
    return [{**r, "eventSourceARN": arn} for r in records]


def test_the_stream_copies_every_entry_to_the_locked_bucket_as_json_lines(deployed):
    call("ana", "GET", f"/api/chats/{CHAT}")
    call("zed", "GET", f"/api/chats/{CHAT}")
    records = stream_records(deployed)
    assert records and {r["eventName"] for r in records} == {"INSERT"}
    result = audit_archive_function.lambda_handler({"Records": records}, Context())
    bucket = deployed.env["AUDIT_BUCKET"]
    s3 = deployed.s3
    lines = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=result["key"])["Body"].read().splitlines()]
    actors = [(line["entry"]["actor"], line["entry"]["outcome"]) for line in lines]
    assert ("ana", "allowed") in actors and ("zed", "refused") in actors
    assert all(line["event"] == "INSERT" and line["sequence"] for line in lines)
    assert result["key"].startswith("audit/")
    # The copy is under compliance-mode Object Lock: it cannot be deleted before its retention ends.
    head = s3.head_object(Bucket=bucket, Key=result["key"])
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"] > datetime.now(timezone.utc)
    version = head["VersionId"]
    with pytest.raises(Exception):
        s3.delete_object(Bucket=bucket, Key=result["key"], VersionId=version)
    # A retried batch lands on the same key.
    assert audit_archive_function.lambda_handler({"Records": records}, Context())["key"] == result["key"]
