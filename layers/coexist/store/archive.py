"""The raw-webhook archive (S3 with Object Lock): every signed body as received, kept WORM."""

from __future__ import annotations

import hashlib
import json
import time

from coexist.resources import QUARANTINE_PREFIX, RAW_PREFIX, UNHANDLED_PREFIX


class Archive:
    def __init__(self, s3_client, bucket: str):
        self.s3 = s3_client
        self.bucket = bucket

    def keep_raw(self, body: bytes, received_at: float | None = None) -> str:
        return self._put(RAW_PREFIX, body, received_at)

    def quarantine(self, body: bytes, reason: str, received_at: float | None = None) -> str:
        return self._put(QUARANTINE_PREFIX, body, received_at, {"reason": reason[:200]})

    def keep_unhandled(self, field: str | None, raw: dict, reason: str) -> str:
        body = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
        return self._put(f"{UNHANDLED_PREFIX}{field or 'unknown'}/", body, None, {"reason": reason[:200]})

    def read(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def _put(self, prefix: str, body: bytes, received_at: float | None, metadata: dict | None = None) -> str:
        # Content-addressed: Meta's retries of the same body land on the same key.
        when = time.gmtime(received_at or time.time())
        digest = hashlib.sha256(body).hexdigest()
        key = f"{prefix}{time.strftime('%Y/%m/%d', when)}/{digest}.json"
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            Metadata=metadata or {},
            ChecksumAlgorithm="SHA256",  # Object Lock requires an integrity checksum on upload
        )
        return key
