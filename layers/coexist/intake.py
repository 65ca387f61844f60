"""Receiving Meta's webhook POST: verify, archive, enqueue — and answer fast.

Nothing here parses the inbox semantics; that is ingest's job, behind the queue. A body whose
signature is valid is never lost: Meta is answered 200 only once it is held twice, for the archive
and for ingest. A body that travels inline is sent to the raw archive's queue (its function writes
a batch of them as one object under raw/) and then to the inbound queue; a bigger one, or one no
message can carry as it is (`coexist.store.queue_text`), is archived under raw/ first and queued as
a pointer to it; one that is not a WhatsApp envelope at all is kept in quarantine and acknowledged
so Meta stops retrying. Any step failing answers an error, and Meta delivers the body again.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from enum import Enum

from coexist.meta import signature
from coexist.store.archive import Archive, RawArchiveQueue
from coexist.store.queue_text import queue_text

# SQS message attributes telling ingest where the body is.
BODY_ATTRIBUTE = "coexist-body"
ARCHIVE_KEY_ATTRIBUTE = "coexist-archive-key"
INLINE, ARCHIVED = "inline", "archived"


class Outcome(str, Enum):
    QUEUED = "queued"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"


@dataclass
class Receipt:
    outcome: Outcome
    archive_key: str | None = None
    reason: str | None = None


class InboundQueue:
    def __init__(self, sqs_client, queue_url: str, inline_limit: int):
        self.sqs = sqs_client
        self.url = queue_url
        self.inline_limit = inline_limit

    def is_small(self, body: bytes) -> bool:
        return len(body) <= self.inline_limit

    def enqueue_inline(self, text: str) -> None:
        """A small body travels inline, as its text (`queue_text`)."""
        self.sqs.send_message(QueueUrl=self.url, MessageBody=text,
                              MessageAttributes={BODY_ATTRIBUTE: {"DataType": "String", "StringValue": INLINE}})

    def enqueue_pointer(self, archive_key: str) -> None:
        """A big body (history, up to 3 MB), or one no message can carry, as a pointer to its object
        in the archive."""
        self.sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps({"archive_key": archive_key}), MessageAttributes={
            BODY_ATTRIBUTE: {"DataType": "String", "StringValue": ARCHIVED},
            ARCHIVE_KEY_ATTRIBUTE: {"DataType": "String", "StringValue": archive_key}})


WABA_OBJECT = "whatsapp_business_account"


def parsed_envelope(body: bytes) -> tuple[dict | None, str | None]:
    """The whole body parsed as an envelope, or why it is not one (its shape only: the full
    validation happens in ingest, which uses the document parsed here rather than parse it again)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None, "not JSON"
    if not isinstance(document, dict) or not isinstance(document.get("entry"), list):
        return None, "not a WhatsApp webhook envelope (no entry list)"
    if document.get("object") not in (None, WABA_OBJECT):
        return None, "not a WhatsApp Business Account webhook"
    return document, None


def why_not_an_envelope(body: bytes) -> str | None:
    """The envelope's shape, from the whole body parsed."""
    return parsed_envelope(body)[1]


# Meta writes the envelope's `object` first: `{"object":"whatsapp_business_account","entry":[...`.
_LEADING_OBJECT = re.compile(rb'\s*\{\s*"object"\s*:\s*"([^"\\]*)"')
HEAD_BYTES = 1024


def why_not_an_envelope_at_a_glance(body: bytes) -> str | None:
    """The envelope's shape from the body's first bytes only, for bodies too big to parse while Meta
    waits (a 2 MB history chunk takes tens of milliseconds): a body that is not a JSON object, or
    names another `object` first, is refused here; anything else malformed further in is found by
    ingest, which parses it whole and quarantines it with the reason (`why_not_an_envelope`)."""
    head = body[:HEAD_BYTES]
    if not head.lstrip().startswith(b"{"):
        return "not JSON"
    leading = _LEADING_OBJECT.match(head)
    if leading and leading.group(1).decode("utf-8", "replace") != WABA_OBJECT:
        return "not a WhatsApp Business Account webhook"
    return None


class Intake:
    def __init__(self, archive: Archive, queue: InboundQueue, raw_archive: RawArchiveQueue):
        self.archive = archive
        self.queue = queue
        self.raw_archive = raw_archive

    def receive(self, body: bytes, signature_header: str | None, app_secret: str) -> Receipt:
        if not signature.is_valid(body, signature_header, app_secret):
            return Receipt(Outcome.REJECTED, reason="invalid signature")
        received_at = time.time()
        # A small body is checked whole; a bigger one travels as a pointer to the archive and only
        # its head is checked here.
        small = self.queue.is_small(body)
        problem = why_not_an_envelope(body) if small else why_not_an_envelope_at_a_glance(body)
        if problem:
            return Receipt(Outcome.QUARANTINED, self.archive.quarantine(body, problem, received_at), problem)
        text = queue_text(body) if small else None
        if text is not None:
            # For the archive first: a body ingest has is always one the archive will have.
            self.raw_archive.enqueue(text)
            self.queue.enqueue_inline(text)
            return Receipt(Outcome.QUEUED)
        # Too big for a message, or not text a message can carry (UTF-16, U+FFFF: `queue_text`).
        key = self.archive.keep_raw(body, received_at)
        self.queue.enqueue_pointer(key)
        return Receipt(Outcome.QUEUED, key)
