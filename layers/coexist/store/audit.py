"""The audit trail in DynamoDB (append-only) and its copy under S3 Object Lock.

`AuditLog.record` puts an entry once, on the condition that it is new, and has no way to change or
remove one; the functions' roles agree (PutItem, no UpdateItem or DeleteItem, on this table).
`AuditArchive.write` turns a batch of the table's stream records into one JSON-lines object.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from botocore.exceptions import BotoCoreError, ClientError

from coexist.domain.audit import AuditEntry, AuditUnavailable, iso_ms
from coexist.domain.retention import expires_at
from coexist.resources import AUDIT_PREFIX
from coexist.store.archive import put_locked
from coexist.store.items import from_item_value

DEFAULT_SPAN = timedelta(days=30)  # a listing without `from` looks this far back
DAYS_PER_PAGE = 31  # day partitions one listing request reads at most; `next` carries on
QUERIES_PER_PAGE = 40  # index pages one request reads at most (filters can leave pages empty)
HIGHEST = "~"  # sorts after every "<time>#<id>" sort key of the same time


class BadCursor(ValueError):
    """The cursor was not made by this listing."""


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    chat_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def entry_item(entry: AuditEntry) -> dict:
    caller = entry.caller
    item = {
        "day": entry.day,
        "at": entry.sort_key,
        "entry_id": entry.entry_id,
        "actor": caller.actor,
        "action": entry.action,
        "outcome": entry.outcome.value,
        "recorded_at": iso_ms(entry.at),
    }
    optional = {
        "role": caller.role, "chat_id": entry.chat_id, "reason": entry.reason, "source_ip": caller.source_ip,
        "user_agent": caller.user_agent, "request": caller.request, "request_id": caller.request_id,
        "detail": {k: str(v) for k, v in entry.detail.items() if v is not None} or None,
    }
    item.update({k: v for k, v in optional.items() if v is not None})  # absent, not null: chat_id is an index key
    return item


def entry_view(item: dict) -> dict:
    item = from_item_value(item)
    return {
        "entry_id": item["entry_id"], "at": item["recorded_at"], "actor": item["actor"], "role": item.get("role"),
        "action": item["action"], "outcome": item["outcome"], "chat_id": item.get("chat_id"),
        "reason": item.get("reason"), "detail": item.get("detail") or {}, "source_ip": item.get("source_ip"),
        "user_agent": item.get("user_agent"), "request": item.get("request"), "request_id": item.get("request_id"),
    }


class AuditLog:
    def __init__(self, table, clock=lambda: datetime.now(timezone.utc), retention_days: int = 0):
        self.table = table
        self.clock = clock
        self.retention_days = retention_days  # this table's copy only; the locked archive keeps its own

    def record(self, entry: AuditEntry) -> None:
        """Write the entry, or raise AuditUnavailable: the caller then refuses the action."""
        try:
            item = entry_item(entry)
            if (expires := expires_at(int(entry.at.timestamp()), self.retention_days)) is not None:
                item["expires_at"] = expires
            self.table.put_item(
                Item=item,
                ConditionExpression="attribute_not_exists(#day)",  # an entry is never overwritten
                ExpressionAttributeNames={"#day": "day"},
            )
        except (ClientError, BotoCoreError) as error:
            raise AuditUnavailable(type(error).__name__) from error

    def page(self, query: AuditQuery, limit: int, cursor: str | None) -> dict:
        """Entries newest first, `limit` at most, and the cursor of the next page (or None)."""
        until = query.until or self.clock()
        since = query.since or (until - DEFAULT_SPAN if not (query.actor or query.chat_id) else None)
        bounds = (iso_ms(since) if since else "0", iso_ms(until) + HIGHEST)
        position = _decode(cursor)
        if query.chat_id:
            items, nxt = self._by_index("by_chat", "chat_id", query.chat_id, query, bounds, limit, position)
        elif query.actor:
            items, nxt = self._by_index("by_actor", "actor", query.actor, query, bounds, limit, position)
        else:
            items, nxt = self._by_day(query, bounds, since, until, limit, position)
        return {"items": [entry_view(i) for i in items], "next": _encode(nxt)}

    def _by_index(self, index, key_name, key_value, query, bounds, limit, position):
        if position is not None and set(position) != {"key"}:
            raise BadCursor("not this listing's cursor")
        start = (position or {}).get("key")
        items: list[dict] = []
        for _ in range(QUERIES_PER_PAGE):
            found, start = self._query(key_name, key_value, query, bounds, limit - len(items), start, index, skip=key_name)
            items += found
            if start is None or len(items) >= limit:
                break
        return items, ({"key": start} if start else None)

    def _by_day(self, query, bounds, since, until, limit, position):
        day = (position or {}).get("day") or until.strftime("%Y-%m-%d")
        start = (position or {}).get("key")
        if position is not None and (set(position) - {"day", "key"} or not isinstance(day, str)):
            raise BadCursor("not this listing's cursor")
        first_day = since.strftime("%Y-%m-%d")
        items: list[dict] = []
        queries = days = 0
        while day >= first_day and len(items) < limit and queries < QUERIES_PER_PAGE and days < DAYS_PER_PAGE:
            found, start = self._query("day", day, query, bounds, limit - len(items), start)
            items += found
            queries += 1
            if start is None:
                day, days = _day_before(day), days + 1
        if day < first_day:
            return items, None
        return items, {"day": day, **({"key": start} if start else {})}

    def _query(self, key_name, key_value, query, bounds, limit, start, index=None, skip=None):
        names = {"#k": key_name, "#at": "at"}
        values = {":k": key_value, ":lo": bounds[0], ":hi": bounds[1]}
        filters = []
        for attribute, wanted in (("actor", query.actor), ("chat_id", query.chat_id), ("action", query.action)):
            if wanted and attribute != skip:
                names[f"#{attribute}"] = attribute
                values[f":{attribute}"] = wanted
                filters.append(f"#{attribute} = :{attribute}")
        kwargs = {
            "KeyConditionExpression": "#k = :k AND #at BETWEEN :lo AND :hi",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if index:
            kwargs["IndexName"] = index
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if start:
            kwargs["ExclusiveStartKey"] = start
        try:
            response = self.table.query(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ValidationException" and start:
                raise BadCursor("not this listing's cursor") from None
            raise
        return response.get("Items", []), response.get("LastEvaluatedKey")


def _day_before(day: str) -> str:
    return (datetime.strptime(day, "%Y-%m-%d") - timedelta(days=1)).strftime("%Y-%m-%d")


def _encode(position: dict | None) -> str | None:
    if not position:
        return None
    raw = json.dumps(from_item_value(position), sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadCursor("not a cursor") from None
    key = position.get("key") if isinstance(position, dict) else None
    if not isinstance(position, dict) or (key is not None and (
        not isinstance(key, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in key.items())
    )):
        raise BadCursor("not this listing's cursor")
    return position


class AuditArchive:
    """The audit table's stream, copied to the Object Lock bucket as JSON lines: one object per
    batch, named by its content, so a retried batch lands on the same key."""

    def __init__(self, s3_client, bucket: str):
        self.s3 = s3_client
        self.bucket = bucket

    def write(self, stream_records: list[dict]) -> str | None:
        from boto3.dynamodb.types import TypeDeserializer

        if not stream_records:
            return None
        deserialize = TypeDeserializer().deserialize
        lines = []
        for record in stream_records:
            change = record.get("dynamodb", {})
            image = change.get("NewImage") or change.get("OldImage") or change.get("Keys") or {}
            # Every change is kept: an INSERT is an entry; anything else would be tampering to look into.
            lines.append(json.dumps({
                "event": record.get("eventName"),
                "sequence": change.get("SequenceNumber"),
                "entry": from_item_value({k: deserialize(v) for k, v in image.items()}),
            }, sort_keys=True, separators=(",", ":"), default=str))
        body = ("\n".join(lines) + "\n").encode()
        first = json.loads(lines[0])["entry"]
        day = str(first.get("day") or "unknown").replace("-", "/")
        key = f"{AUDIT_PREFIX}{day}/{str(first.get('at', ''))[:23]}-{hashlib.sha256(body).hexdigest()[:32]}.jsonl"
        put_locked(self.s3, self.bucket, key, body, "application/x-ndjson")
        return key
