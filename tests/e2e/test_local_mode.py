"""What `make run` promises a newcomer, checked over HTTP against a real local-mode process.

A Meta payload signed with the app secret goes in at /webhook and comes out of the agent API, having
crossed API Gateway's event shape, the archive, the inbound queue and the ingest function.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import boto3
import pytest

from tests.e2e.harness import VERIFY_TOKEN, LocalMode, fixture_bytes, wait_until

pytestmark = pytest.mark.e2e

PHONE_NUMBER_ID = "106540352242922"  # metadata.phone_number_id in messages_text.json
CUSTOMER_WA_ID = "16505551234"
WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
CHAT_FIELDS = {"chat_id", "phone_number_id", "wa_id", "contact_name", "mode", "window_expires_at", "last_message_at"}
MESSAGE_FIELDS = {"id", "direction", "source", "type", "text", "timestamp", "status", "errors", "pricing"}


def handshake(local_mode: LocalMode, token: str, challenge: str = "1158201444"):
    query = urlencode({"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": token})
    return local_mode.request("GET", f"/webhook?{query}")


def test_handshake_echoes_the_challenge_for_the_verify_token(local_mode):
    reply = handshake(local_mode, VERIFY_TOKEN)

    assert (reply.status, reply.body) == (200, b"1158201444")


def test_handshake_with_another_token_is_forbidden(local_mode):
    assert handshake(local_mode, "not-the-verify-token").status == 403


def test_post_with_a_bad_signature_is_unauthorized(local_mode):
    body = fixture_bytes("meta_docs/messages_text.json")

    assert local_mode.post_webhook(body, secret="someone-elses-secret").status == 401
    assert local_mode.post_webhook(body, signature="sha256=" + "0" * 64).status == 401


def test_unknown_path_is_not_found(local_mode):
    reply = local_mode.request("GET", "/nowhere")

    assert reply.status == 404
    assert reply.json() == {"message": "Not Found"}


def test_api_requires_the_bearer_token(local_mode):
    assert local_mode.api_get(f"/chats?phone_number_id={PHONE_NUMBER_ID}", token=None).status == 401
    assert local_mode.api_get(f"/chats?phone_number_id={PHONE_NUMBER_ID}", token="wrong").status == 401


def test_a_signed_customer_message_reaches_the_inbox(local_mode):
    reply = local_mode.post_webhook(fixture_bytes("meta_docs/messages_text.json"))
    assert reply.status == 200

    def customer_chat():
        listing = local_mode.api_get(f"/chats?phone_number_id={PHONE_NUMBER_ID}")
        assert listing.status == 200, listing.body
        page = listing.json()
        assert set(page) >= {"items", "next"}
        return next((chat for chat in page["items"] if chat["wa_id"] == CUSTOMER_WA_ID), None)

    chat = wait_until(customer_chat, timeout=20)
    assert CHAT_FIELDS <= set(chat)
    assert chat["phone_number_id"] == PHONE_NUMBER_ID
    assert chat["contact_name"] == "Sheena Nelson"
    assert chat["mode"] in {"bot", "queued", "agent", "app", "closed"}
    assert chat["window_expires_at"] and chat["last_message_at"]

    messages = local_mode.api_get(f"/chats/{quote(chat['chat_id'], safe='')}/messages")
    assert messages.status == 200, messages.body
    message = next(m for m in messages.json()["items"] if m["id"] == WAMID)
    assert MESSAGE_FIELDS <= set(message)
    assert (message["direction"], message["source"], message["type"]) == ("inbound", "customer", "text")
    assert message["text"] == "Does it come in another color?"


def test_a_signed_body_reaches_the_raw_archive_byte_for_byte(local_mode):
    """The raw archive's queue is polled as its event source mapping would: the body lands in an
    object under raw/ of the Object Lock bucket, exactly as Meta signed it."""
    from coexist.store.archive import raw_bodies

    body = fixture_bytes("meta_docs/messages_text.json") + b"\n \n"  # bytes of its own, the same message
    assert local_mode.post_webhook(body).status == 200
    s3 = boto3.client("s3", endpoint_url=local_mode.moto, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = local_mode.env["ARCHIVE_BUCKET"]

    def archived():
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw/").get("Contents", [])]
        bodies = [b for key in keys for _, b in raw_bodies(s3.get_object(Bucket=bucket, Key=key)["Body"].read())]
        return body in bodies

    assert wait_until(archived, timeout=20)


def test_the_aws_emulator_serves_the_same_account(local_mode):
    """`aws --endpoint-url <moto>` (or any other process) sees the tables local mode created."""
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=local_mode.moto, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )
    tables = set(dynamodb.list_tables()["TableNames"])

    assert {local_mode.env[name] for name in ("CHATS_TABLE", "MESSAGES_TABLE", "NUMBERS_TABLE")} <= tables


def test_the_ready_line_names_every_resource(local_mode):
    from coexist import resources

    expected = {spec.env_var for spec in resources.TABLES} | {resources.ARCHIVE_BUCKET_ENV, resources.INBOUND_QUEUE_ENV}
    assert expected <= set(local_mode.env)
    assert local_mode.sns_topic_arn.startswith("arn:aws:sns:")
