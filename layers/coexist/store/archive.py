"""The raw-webhook archive (S3 with Object Lock): every signed body as received, kept WORM."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from coexist.resources import QUARANTINE_PREFIX, RAW_PREFIX, UNHANDLED_PREFIX
from coexist.store.queue_text import queue_text


def put_locked(s3, bucket: str, key: str, body: bytes, content_type: str, metadata: dict | None = None) -> None:
    """An object put into a bucket under Object Lock (the webhook archive, the audit trail's copy)."""
    s3.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata or {},
        ChecksumAlgorithm="SHA256",  # Object Lock requires an integrity checksum on upload
    )


@dataclass(frozen=True)
class RawBody:
    """A signed body as the webhook received it, on its way to the archive in a batch."""

    text: str
    received_at: float


def raw_batch(bodies: list[RawBody]) -> bytes:
    """A batch object's content: a JSON line per body, oldest first, `{"received_at", "sha256",
    "body"}`, the body as the text it was (`raw_bodies` gives back its bytes)."""
    ordered = sorted(bodies, key=lambda b: b.received_at)
    lines = [json.dumps({"received_at": b.received_at, "sha256": hashlib.sha256(b.text.encode()).hexdigest(),
                         "body": b.text}, ensure_ascii=False, separators=(",", ":")) for b in ordered]
    return ("\n".join(lines) + "\n").encode()


def raw_bodies(lines: bytes) -> list[tuple[float, bytes]]:
    """A batch object's bodies, as received: (received at, the exact bytes)."""
    entries = [json.loads(line) for line in lines.splitlines() if line.strip()]
    return [(entry["received_at"], entry["body"].encode("utf-8")) for entry in entries]


class RawArchiveQueue:
    """Where bodies wait for the raw archive function, which writes a batch of them as one object
    (`Archive.keep_raw_batch`; the time each was received is the message's own `SentTimestamp`)."""

    def __init__(self, sqs_client, queue_url: str, body_limit: int):
        self.sqs = sqs_client
        self.url = queue_url
        self.body_limit = body_limit  # the bodies that travel inline (Settings.inline_body_limit)

    def enqueue(self, text: str) -> None:
        """A body queued as its text (`queue_text`)."""
        self.sqs.send_message(QueueUrl=self.url, MessageBody=text)


class Archive:
    def __init__(self, s3_client, bucket: str, batches: RawArchiveQueue | None = None):
        self.s3 = s3_client
        self.bucket = bucket
        self.batches = batches  # the raw archive's queue, where the function has one

    def keep_raw(self, body: bytes, received_at: float | None = None) -> str:
        return self._put(RAW_PREFIX, body, received_at)

    def keep_raw_in_a_batch(self, body: bytes) -> None:
        """A body archived with others through the raw archive's queue (a send where an object of
        its own is an S3 PUT, twelve times the price); without a queue, or for a body too big for a
        message or that no message can carry as it is (`queue_text`), an object of its own."""
        if self.batches is not None and len(body) <= self.batches.body_limit:
            text = queue_text(body)
            if text is not None:
                self.batches.enqueue(text)
                return
        self.keep_raw(body)

    def quarantine(self, body: bytes, reason: str, received_at: float | None = None) -> str:
        return self._put(QUARANTINE_PREFIX, body, received_at, {"reason": reason[:200]})

    def keep_unhandled(self, field: str | None, raw: dict, reason: str) -> str:
        body = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
        return self._put(f"{UNHANDLED_PREFIX}{field or 'unknown'}/", body, None, {"reason": reason[:200]})

    def keep_raw_batch(self, bodies: list[RawBody]) -> str | None:
        """Bodies the webhook queued for the archive, as one JSON-lines object under raw/ (`raw_batch`;
        the queue carries only bodies that are UTF-8, so each line gives back the bytes Meta signed).
        Named by the first body's day and time and the object's digest: a batch delivered again
        lands on the same key (a new version of it in the versioned bucket)."""
        if not bodies:
            return None
        content = raw_batch(bodies)
        first = time.gmtime(min(b.received_at for b in bodies))
        stamp = time.strftime("%Y%m%dT%H%M%SZ", first)
        key = f"{RAW_PREFIX}{time.strftime('%Y/%m/%d', first)}/{stamp}-{hashlib.sha256(content).hexdigest()[:32]}.jsonl"
        put_locked(self.s3, self.bucket, key, content, "application/x-ndjson")
        return key

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _put(self, prefix: str, body: bytes, received_at: float | None, metadata: dict | None = None) -> str:
        # Content-addressed: Meta's retries of the same body land on the same key.
        when = time.gmtime(received_at or time.time())
        digest = hashlib.sha256(body).hexdigest()
        key = f"{prefix}{time.strftime('%Y/%m/%d', when)}/{digest}.json"
        put_locked(self.s3, self.bucket, key, body, "application/json", metadata)
        return key
