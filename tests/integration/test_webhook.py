"""The webhook function under moto: handshake, signature, archive, queue, quarantine."""

from __future__ import annotations

import base64
import json
import time

from functions.webhook import handler as webhook_function
from tests.conftest import VERIFY_TOKEN, Context, api_event, meta_payload, signed_webhook_event
from tests.integration.helpers import post_webhook


def _objects(aws, prefix: str) -> list[str]:
    listing = aws.s3.list_objects_v2(Bucket=aws.env["ARCHIVE_BUCKET"], Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def _queued(aws) -> list[dict]:
    return aws.sqs.receive_message(
        QueueUrl=aws.env["INBOUND_QUEUE_URL"], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])


def _handshake(query: str) -> dict:
    return webhook_function.lambda_handler(api_event("GET", f"/webhook?{query}", resource="/webhook"), Context())


def test_handshake_returns_the_challenge_as_plain_text(aws):
    response = _handshake(f"hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}")
    assert response["statusCode"] == 200
    assert response["body"] == "1158201444"
    assert response["multiValueHeaders"]["Content-Type"] == ["text/plain"]


def test_handshake_with_wrong_token_or_mode_is_forbidden(aws):
    assert _handshake("hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope")["statusCode"] == 403
    assert _handshake(f"hub.mode=unsubscribe&hub.challenge=1&hub.verify_token={VERIFY_TOKEN}")["statusCode"] == 403
    assert _handshake("")["statusCode"] == 403


def _waiting_for_the_archive(aws) -> list[dict]:
    return aws.sqs.receive_message(
        QueueUrl=aws.env["RAW_ARCHIVE_QUEUE_URL"], MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])


def _archived_bodies(aws) -> list[bytes]:
    from coexist.store.archive import raw_bodies

    bodies = []
    for key in _objects(aws, "raw/"):
        bodies += [body for _, body in raw_bodies(aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=key)["Body"].read())]
    return bodies


def test_valid_post_is_queued_for_ingest_and_for_the_archive(aws):
    body = json.dumps(meta_payload("messages_text.json"), indent=1).encode()  # not our own serialisation
    response = post_webhook(body)
    assert response["statusCode"] == 200
    [queued] = _queued(aws)
    assert queued["Body"].encode() == body
    assert queued["MessageAttributes"]["coexist-body"]["StringValue"] == "inline"
    assert "coexist-archive-key" not in queued["MessageAttributes"]
    [waiting] = _waiting_for_the_archive(aws)
    assert waiting["Body"].encode() == body
    assert _objects(aws, "raw/") == []  # written by the raw archive function, a batch at a time


def test_a_batch_of_bodies_is_archived_byte_for_byte_as_one_object(aws):
    from tests.integration.helpers import archive_queued

    payload = meta_payload("messages_text.json")
    first = json.dumps(payload, indent=1).encode()
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "¿Hay en otro color? 🌵 \u2028 \"quoted\""
    second = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    for body in (first, second, first):  # Meta delivering the first again
        assert post_webhook(body)["statusCode"] == 200
    [result] = archive_queued(aws)
    [key] = _objects(aws, "raw/")
    assert result == {"archived": 3, "key": key} and key.endswith(".jsonl")
    assert sorted(_archived_bodies(aws)) == sorted([first, second, first])
    stored = aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=key)
    assert stored["ContentType"] == "application/x-ndjson"
    assert _waiting_for_the_archive(aws) == []


def test_a_batch_the_archive_cannot_write_stays_on_its_queue(aws, monkeypatch):
    from coexist.store.archive import Archive
    from tests.integration.helpers import archive_queued

    assert post_webhook(meta_payload("messages_text.json"))["statusCode"] == 200

    def refused(*_args, **_kwargs):
        raise ConnectionError("S3 unreachable")

    monkeypatch.setattr(Archive, "keep_raw_batch", refused)
    try:
        archive_queued(aws)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the batch was acknowledged without its object")
    # Not deleted: SQS hands the batch out again once its visibility timeout passes, then parks it.
    counts = aws.sqs.get_queue_attributes(QueueUrl=aws.env["RAW_ARCHIVE_QUEUE_URL"], AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesNotVisible"]) == ("0", "1")
    assert _objects(aws, "raw/") == []


def test_bad_or_missing_signature_is_401_and_nothing_is_stored(aws):
    body = json.dumps(meta_payload("messages_text.json")).encode()
    wrong = signed_webhook_event(body, secret="someone-elses-secret")
    assert webhook_function.lambda_handler(wrong, Context())["statusCode"] == 401
    unsigned = api_event("POST", "/webhook", body, {"Content-Type": "application/json"}, resource="/webhook")
    assert webhook_function.lambda_handler(unsigned, Context())["statusCode"] == 401
    assert _objects(aws, "") == []
    assert _queued(aws) == []


def test_signed_body_that_is_not_an_envelope_is_quarantined_and_acknowledged(aws):
    for body in (b"this is not json", b'{"object": "page", "entry": []}', b'["a list"]'):
        assert post_webhook(body)["statusCode"] == 200
    assert len(_objects(aws, "quarantine/")) == 3
    assert _objects(aws, "raw/") == []
    assert _queued(aws) == []


def emitted_metrics(output: str) -> set[str]:
    """The metric names in the CloudWatch embedded-metric-format lines a function printed."""
    names = set()
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []) if isinstance(document, dict) else []:
            names |= {metric["Name"] for metric in directive["Metrics"]}
    return names


def test_a_quarantined_body_and_a_storage_failure_emit_the_metrics_their_alarms_watch(aws, capsys, monkeypatch):
    """The ingress stack alarms on WebhookQuarantined and WebhookFailed: these are their names."""
    capsys.readouterr()
    assert post_webhook(b"this is not json")["statusCode"] == 200
    assert "WebhookQuarantined" in emitted_metrics(capsys.readouterr().out)

    from coexist.intake import Intake

    def unreachable(*_):
        raise OSError("archive unreachable")

    monkeypatch.setattr(Intake, "receive", unreachable)
    assert post_webhook(text_envelope())["statusCode"] == 503
    assert "WebhookFailed" in emitted_metrics(capsys.readouterr().out)


def text_envelope() -> dict:
    return meta_payload("messages_text.json")


def test_body_above_the_inline_limit_travels_as_a_pointer_to_the_archive(aws):
    payload = meta_payload("history_approved_phase0_chunk1.json")
    payload["padding"] = "x" * 2_500_000  # Meta sends up to 3 MB
    body = json.dumps(payload).encode()
    assert post_webhook(body)["statusCode"] == 200
    [queued] = _queued(aws)
    assert queued["MessageAttributes"]["coexist-body"]["StringValue"] == "archived"
    assert len(queued["Body"]) < 1_000
    key = json.loads(queued["Body"])["archive_key"]
    assert aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=key)["Body"].read() == body


def test_a_body_no_queue_message_can_carry_travels_as_a_pointer_and_its_messages_reach_the_inbox(aws):
    """JSON in UTF-16, and a text holding U+FFFF (SQS refuses both as a message): each is archived
    whole and ingested from its object, where it used to be answered 503 on every delivery."""
    from tests.integration.helpers import chat_of, ingest_queued, message
    from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message

    now = int(time.time())
    bodies = {"wamid.utf16": json.dumps(text_message("wamid.utf16", now - 1, body="héllo")).encode("utf-16"),
              "wamid.uffff": json.dumps(text_message("wamid.uffff", now, body="odd \uffff"), ensure_ascii=False).encode()}
    for body in bodies.values():
        assert post_webhook(body)["statusCode"] == 200
    queued = aws.sqs.receive_message(QueueUrl=aws.env["INBOUND_QUEUE_URL"], MaxNumberOfMessages=10, VisibilityTimeout=0,
                                     MessageAttributeNames=["All"])["Messages"]  # left for ingest
    assert [m["MessageAttributes"]["coexist-body"]["StringValue"] for m in queued] == ["archived", "archived"]
    kept = {aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=json.loads(m["Body"])["archive_key"])["Body"].read()
            for m in queued}
    assert kept == set(bodies.values())

    assert ingest_queued(aws) == [{"batchItemFailures": []}]
    chat = chat_of(NUMBER, CUSTOMER)
    assert message(chat, "wamid.utf16")["text"] == "héllo"
    assert message(chat, "wamid.uffff")["text"] == "odd \uffff"


def test_when_the_archive_or_its_queue_fails_meta_is_asked_to_retry_and_ingest_gets_nothing(aws, monkeypatch):
    from coexist.store.archive import RawArchiveQueue
    from coexist.store.archive import Archive

    def unavailable(*_args, **_kwargs):
        raise ConnectionError("unreachable")

    monkeypatch.setattr(RawArchiveQueue, "enqueue", unavailable)  # a body that travels inline
    assert post_webhook(meta_payload("messages_text.json"))["statusCode"] == 503
    assert _queued(aws) == []

    monkeypatch.setattr(Archive, "keep_raw", unavailable)  # a big one, archived by the webhook itself
    payload = meta_payload("history_approved_phase0_chunk1.json")
    payload["padding"] = "x" * 300_000
    assert post_webhook(payload)["statusCode"] == 503
    assert _queued(aws) == []


def test_a_big_body_malformed_past_its_head_is_acknowledged_then_quarantined_by_ingest(aws, capsys):
    """Only a big body's head is checked while Meta waits: ingest parses it whole, keeps it in
    quarantine with the reason and does not retry it. The raw copy stays in the archive."""
    from tests.integration.helpers import ingest_queued

    body = b'{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [' + b'{"field": "history"},' * 20_000
    assert post_webhook(body)["statusCode"] == 200
    [raw_key] = _objects(aws, "raw/")
    assert _objects(aws, "quarantine/") == []
    capsys.readouterr()
    assert ingest_queued(aws) == [{"batchItemFailures": []}]
    assert "IngestQuarantined" in emitted_metrics(capsys.readouterr().out)
    [quarantined] = _objects(aws, "quarantine/")
    kept = aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=quarantined)
    assert kept["Body"].read() == body
    assert kept["Metadata"]["reason"] == "not JSON"
    assert aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=raw_key)["Body"].read() == body
    assert _queued(aws) == []


def test_a_big_body_that_opens_as_another_object_is_quarantined_at_the_webhook(aws):
    body = json.dumps({"object": "page", "entry": [{"padding": "x" * 300_000}]}).encode()
    assert post_webhook(body)["statusCode"] == 200
    [quarantined] = _objects(aws, "quarantine/")
    kept = aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=quarantined)
    assert kept["Metadata"]["reason"] == "not a WhatsApp Business Account webhook"
    assert _objects(aws, "raw/") == []
    assert _queued(aws) == []
