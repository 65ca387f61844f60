"""The webhook's shape check: whole for bodies that travel inline, the head only for big ones (ingest
parses those whole and quarantines what is malformed further in)."""

from __future__ import annotations

import json

import pytest

from coexist.intake import InboundQueue, Intake, Outcome, why_not_an_envelope, why_not_an_envelope_at_a_glance
from coexist.meta.signature import sign
from coexist.store.archive import RawArchiveQueue
from tests.conftest import meta_payload

SECRET = "shape-secret"
INLINE_LIMIT = 1_000


def big(payload: dict) -> bytes:
    payload = dict(payload, padding="x" * 5_000)
    return json.dumps(payload).encode()


@pytest.mark.parametrize(
    "body",
    [
        big(meta_payload("history_approved_phase0_chunk1.json")),
        b'  \n{ "object" : "whatsapp_business_account", "entry": [' + b"1," * 5_000 + b"1]}",
        b'{"entry": [], "object": "whatsapp_business_account"}',  # `object` not first: left to ingest
    ],
)
def test_a_body_that_opens_as_an_envelope_passes_the_glance(body):
    assert why_not_an_envelope_at_a_glance(body) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"x" * 5_000, "not JSON"),
        (b'["a list", ' + b"1," * 5_000 + b"1]", "not JSON"),
        (b"", "not JSON"),
        (b'{"object": "page", "entry": [' + b"1," * 5_000 + b"1]}", "not a WhatsApp Business Account webhook"),
    ],
)
def test_a_body_that_opens_as_something_else_is_refused_at_a_glance(body, reason):
    assert why_not_an_envelope_at_a_glance(body) == reason


def test_what_the_glance_lets_through_the_whole_check_still_refuses():
    truncated = b'{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [' + b"x" * 5_000
    no_entry_list = b'{"object": "whatsapp_business_account", "entry": "' + b"x" * 5_000 + b'"}'
    assert why_not_an_envelope_at_a_glance(truncated) is None
    assert why_not_an_envelope(truncated) == "not JSON"
    assert why_not_an_envelope_at_a_glance(no_entry_list) is None
    assert why_not_an_envelope(no_entry_list) == "not a WhatsApp webhook envelope (no entry list)"


class _Recording:
    def __init__(self):
        self.puts, self.sends = [], []

    def put_object(self, **call):
        self.puts.append(call)

    def send_message(self, **call):
        self.sends.append(call)


def _intake(recording: _Recording) -> Intake:
    from coexist.store.archive import Archive

    return Intake(Archive(recording, "archive"), InboundQueue(recording, "https://queue", INLINE_LIMIT),
                  RawArchiveQueue(recording, "https://raw-archive", INLINE_LIMIT))


def test_a_small_body_is_checked_whole_and_quarantined_at_the_webhook():
    recording = _Recording()
    body = b'{"object": "whatsapp_business_account", "entry": "not a list"}'
    receipt = _intake(recording).receive(body, sign(body, SECRET), SECRET)
    assert (receipt.outcome, receipt.reason) == (Outcome.QUARANTINED, "not a WhatsApp webhook envelope (no entry list)")
    [put] = recording.puts
    assert put["Key"].startswith("quarantine/") and put["Metadata"] == {"reason": receipt.reason}
    assert recording.sends == []


def test_a_big_body_malformed_past_its_head_is_archived_and_queued_for_ingest_to_judge():
    recording = _Recording()
    body = b'{"object": "whatsapp_business_account", "entry": [' + b"x" * 5_000
    receipt = _intake(recording).receive(body, sign(body, SECRET), SECRET)
    assert receipt.outcome is Outcome.QUEUED
    [put] = recording.puts
    assert put["Key"].startswith("raw/") and put["Body"] == body
    [send] = recording.sends
    assert json.loads(send["MessageBody"]) == {"archive_key": put["Key"]}


def test_a_small_envelope_goes_to_the_archive_queue_before_the_inbound_queue_and_writes_no_object():
    recording = _Recording()
    body = b'{"object": "whatsapp_business_account", "entry": []}'
    receipt = _intake(recording).receive(body, sign(body, SECRET), SECRET)
    assert (receipt.outcome, receipt.archive_key) == (Outcome.QUEUED, None)
    assert recording.puts == []
    assert [(s["QueueUrl"], s["MessageBody"].encode()) for s in recording.sends] == [
        ("https://raw-archive", body), ("https://queue", body)]


def test_a_big_body_that_is_not_json_at_its_head_is_quarantined_at_the_webhook():
    recording = _Recording()
    body = b"<html>" + b"x" * 5_000
    receipt = _intake(recording).receive(body, sign(body, SECRET), SECRET)
    assert (receipt.outcome, receipt.reason) == (Outcome.QUARANTINED, "not JSON")
    [put] = recording.puts
    assert put["Key"].startswith("quarantine/") and put["Body"] == body
    assert recording.sends == []


@pytest.mark.parametrize(
    "body",
    [
        '{"object": "whatsapp_business_account", "entry": []}'.encode("utf-16"),  # JSON, with its BOM
        '{"object": "whatsapp_business_account", "entry": [], "note": "\uffff"}'.encode(),  # SQS refuses U+FFFF
    ],
    ids=["utf-16", "u+ffff"],
)
def test_a_small_envelope_no_message_can_carry_is_archived_whole_and_queued_as_a_pointer(body):
    """Sent as text, SQS would refuse it on every delivery (503 each time): the body kept nowhere."""
    recording = _Recording()
    receipt = _intake(recording).receive(body, sign(body, SECRET), SECRET)
    assert receipt.outcome is Outcome.QUEUED
    [put] = recording.puts
    assert put["Key"] == receipt.archive_key and put["Key"].startswith("raw/") and put["Body"] == body
    [send] = recording.sends
    assert send["QueueUrl"] == "https://queue" and json.loads(send["MessageBody"]) == {"archive_key": put["Key"]}


@pytest.mark.parametrize(
    ("body", "carried"),
    [
        ("façade 😊 \t\n\r \ud7ff \ue000 \ufffd \U0010ffff".encode(), True),
        ("\ufffe".encode(), False),
        ("\uffff".encode(), False),
        (b"\x00", False),
        (b"\x1f", False),
        (b"\xff\xfe", False),  # not UTF-8
    ],
)
def test_a_message_carries_text_of_the_characters_sqs_accepts(body, carried):
    from coexist.store.queue_text import queue_text

    assert (queue_text(body) == body.decode("utf-8")) if carried else queue_text(body) is None


# XML's characters (https://www.w3.org/TR/xml/#charsets), which SQS accepts in a message body.
SQS_ACCEPTS = [(0x9, 0x9), (0xA, 0xA), (0xD, 0xD), (0x20, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF)]
SURROGATES = range(0xD800, 0xE000)  # no UTF-8 text holds one


def test_a_message_carries_text_of_every_character_sqs_accepts_and_of_none_it_refuses():
    from coexist.store.queue_text import queue_text

    accepted = [cp for low, high in SQS_ACCEPTS for cp in range(low, high + 1)]
    everything = "".join(map(chr, accepted)).encode("utf-8")
    assert queue_text(everything) == everything.decode("utf-8")
    refused = sorted(set(range(0x110000)) - set(accepted) - set(SURROGATES))
    assert len(refused) == 31  # the C0 controls but tab, line feed and carriage return; U+FFFE, U+FFFF
    for cp in refused:
        assert queue_text(("ok" + chr(cp) + "ok").encode("utf-8")) is None, hex(cp)
