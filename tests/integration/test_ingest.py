"""Webhook → queue → ingest → tables, under moto, with Meta's payloads duplicated and reordered."""

from __future__ import annotations

import copy
import json

import pytest
from botocore.exceptions import ClientError

from coexist.reads import iso
from coexist.store.contacts import PROFILE_RESTATED_S
from coexist.store.messages import MessageStore
from functions.ingest import handler as ingest_function
from tests.conftest import Context, meta_payload, sqs_records, wrap_value
from tests.integration.helpers import api, deliver, message, messages_of, post_webhook, chat_of

NUMBER = "106540352242922"
CUSTOMER = "16505551234"


def our_chat() -> str:
    """The customer's chat: its id is opaque, so it is looked up by the phone number."""
    return chat_of(NUMBER, CUSTOMER)


TEXT_WAMID = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="


def text_message(wamid: str, timestamp: int, body: str = "hello", sender: str = CUSTOMER) -> dict:
    payload = meta_payload("messages_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = sender
    value["messages"][0].update({"id": wamid, "timestamp": str(timestamp), "from": sender, "text": {"body": body}})
    return payload


def status(wamid: str, state: str, timestamp: int, **extra) -> dict:
    payload = meta_payload("status_v24_no_conversation_no_pricing.json")
    payload["entry"][0]["changes"][0]["value"]["statuses"][0].update({"id": wamid, "status": state, "timestamp": str(timestamp), **extra})
    return payload


def echo(wamid: str, timestamp: int, **fields) -> dict:
    payload = meta_payload("smb_message_echoes_text.json")
    payload["entry"][0]["changes"][0]["value"]["message_echoes"][0].update({"id": wamid, "timestamp": str(timestamp), **fields})
    return payload


def chat():
    code, body = api(f"/api/chats/{our_chat()}")
    assert code == 200, body
    return body


# --- messages --------------------------------------------------------------------------------

def test_customer_text_creates_contact_chat_message_and_window(aws):
    deliver(aws, meta_payload("messages_text.json"))
    view = chat()
    assert view["contact_name"] == "Sheena Nelson"
    assert view["mode"] == "bot"
    assert view["last_message_at"] == "2025-06-08T20:59:43Z"
    assert view["window_expires_at"] == "2025-06-09T20:59:43Z"
    [only] = messages_of(our_chat())
    assert only["id"] == TEXT_WAMID
    assert (only["direction"], only["source"], only["type"], only["text"]) == ("inbound", "customer", "text", "Does it come in another color?")
    assert only["timestamp"] == "2025-06-08T20:59:43Z"


def test_duplicates_and_replays_change_nothing(aws):
    payload = meta_payload("messages_text.json")
    deliver(aws, payload, payload)
    before = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": TEXT_WAMID})["Item"]
    deliver(aws, payload)
    after = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": TEXT_WAMID})["Item"]
    assert len(messages_of(our_chat())) == 1
    assert before == after


def test_a_late_older_message_never_shortens_the_window(aws):
    deliver(aws, text_message("wamid.new", 2_000_000_000), text_message("wamid.old", 1_999_000_000))
    view = chat()
    assert view["window_expires_at"] == "2033-05-19T03:33:20Z"  # 2_000_000_000 + 24 h
    assert view["last_message_at"] == "2033-05-18T03:33:20Z"
    assert [m["id"] for m in messages_of(our_chat())] == ["wamid.old", "wamid.new"]


def test_a_customer_message_older_than_a_reply_opens_the_window_and_leaves_the_recency(aws):
    # The customer wrote at 1_800_000_100; the business's reply at 1_800_000_200 arrived first.
    deliver(aws, text_message("wamid.first", 1_800_000_000), echo("wamid.reply", 1_800_000_200, to=f"+{CUSTOMER}"),
            text_message("wamid.late", 1_800_000_100))
    view = chat()
    assert view["window_expires_at"] == iso(1_800_000_100 + 24 * 3600)
    assert view["last_message_at"] == iso(1_800_000_200)


def test_a_late_customer_message_beside_a_newer_reply_moves_the_recency_only(aws):
    deliver(aws, text_message("wamid.newest", 1_800_000_100))
    # One webhook: a customer message older than the window held, and the phone's reply after both.
    late = text_message("wamid.older", 1_800_000_000)
    late["entry"][0]["changes"] += echo("wamid.reply", 1_800_000_200, to=f"+{CUSTOMER}")["entry"][0]["changes"]
    deliver(aws, late)
    view = chat()
    assert view["window_expires_at"] == iso(1_800_000_100 + 24 * 3600)
    assert view["last_message_at"] == iso(1_800_000_200)


def test_customer_messages_in_any_order_leave_the_newest_window_and_recency(aws):
    times = [1_800_000_300, 1_800_000_100, 1_800_000_200]
    deliver(aws, *[text_message(f"wamid.{t}", t) for t in times])
    deliver(aws, text_message("wamid.1800000300", 1_800_000_300))  # redelivered
    view = chat()
    assert view["window_expires_at"] == iso(1_800_000_300 + 24 * 3600)
    assert view["last_message_at"] == iso(1_800_000_300)
    assert sorted(m["id"] for m in messages_of(our_chat())) == [f"wamid.{t}" for t in sorted(times)]


def named(payload: dict, name: str) -> dict:
    payload["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = name
    return payload


def stored_profile(aws) -> tuple[str, int]:
    item = aws.dynamodb.Table(aws.env["CONTACTS_TABLE"]).get_item(Key={"phone_number_id": NUMBER, "customer_id": our_chat()})["Item"]
    return item["profile_name"], int(item["profile_seen_at"])


def test_a_late_message_with_an_older_profile_name_keeps_the_newer_name(aws):
    deliver(aws, named(text_message("wamid.a", 1_800_000_000), "Sheena N."))
    deliver(aws, named(text_message("wamid.c", 1_800_000_200), "Sheena Nelson"))
    deliver(aws, named(text_message("wamid.b", 1_800_000_100), "Sheena N."))  # sent before the rename, arrives after
    assert chat()["contact_name"] == "Sheena Nelson"
    assert stored_profile(aws) == ("Sheena Nelson", 1_800_000_200)


def test_an_unchanged_profile_is_written_again_only_once_its_time_is_old(aws):
    deliver(aws, text_message("wamid.a", 1_800_000_000))
    deliver(aws, text_message("wamid.b", 1_800_000_000 + PROFILE_RESTATED_S - 1))
    assert stored_profile(aws) == ("Sheena Nelson", 1_800_000_000)  # the same profile, written moments ago
    deliver(aws, named(text_message("wamid.c", 1_800_000_000 + PROFILE_RESTATED_S), "Sheena Nelson-Park"))
    assert stored_profile(aws) == ("Sheena Nelson-Park", 1_800_000_000 + PROFILE_RESTATED_S)  # a new name: written at once
    deliver(aws, named(text_message("wamid.d", 1_800_000_000 + 2 * PROFILE_RESTATED_S), "Sheena Nelson-Park"))
    assert stored_profile(aws) == ("Sheena Nelson-Park", 1_800_000_000 + 2 * PROFILE_RESTATED_S)  # restated after the interval


@pytest.mark.parametrize(
    "kind, content, text",
    [
        ("image", {"id": "1", "mime_type": "image/jpeg", "sha256": "x", "caption": "rash photo"}, "rash photo"),
        ("audio", {"id": "2", "mime_type": "audio/ogg", "voice": True}, None),
        ("location", {"latitude": 38.9, "longitude": -77.03, "name": "Clinic"}, "Clinic"),
        ("contacts", [{"name": {"formatted_name": "A B"}, "phones": [{"phone": "+1"}]}], None),
        ("button", {"text": "Confirm", "payload": "confirm-1"}, "Confirm"),
        ("reaction", {"message_id": "wamid.x", "emoji": "👍"}, "👍"),
        ("unsupported", {"type": "poll"}, None),
    ],
)
def test_every_inbound_type_is_stored_with_its_content(aws, kind, content, text):
    payload = text_message("wamid.typed", 1_800_000_000)
    msg = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del msg["text"]
    msg.update({"type": kind, kind: content})
    if kind == "unsupported":
        msg["errors"] = [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown", "error_data": {"details": "Message type is currently not supported."}}]
    deliver(aws, payload)
    stored = message(our_chat(), "wamid.typed")
    assert (stored["type"], stored["text"]) == (kind, text)
    assert stored["content"] == content
    if kind == "unsupported":
        assert stored["errors"][0]["code"] == 131051
    assert chat()["window_expires_at"] is not None


def test_referral_is_recorded_for_the_free_entry_point_window(aws):
    payload = text_message("wamid.ad", 1_800_000_000)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["referral"] = {
        "source_url": "https://fb.me/x", "source_id": "ad-1", "source_type": "ad", "ctwa_clid": "clid-1"
    }
    deliver(aws, payload)
    assert chat()["referral_at"] == "2027-01-15T08:00:00Z"
    assert message(our_chat(), "wamid.ad")["referral"]["ctwa_clid"] == "clid-1"


def test_unknown_message_type_is_stored_raw_not_an_error(aws):
    payload = text_message("wamid.future", 1_800_000_000)
    msg = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    del msg["text"]
    msg.update({"type": "hologram", "hologram": {"depth": 3}})
    deliver(aws, payload)
    stored = message(our_chat(), "wamid.future")
    assert (stored["type"], stored["content"]) == ("hologram", {"depth": 3})


def test_unknown_field_is_kept_raw_in_the_archive(aws):
    deliver(aws, wrap_value("brand_new_field", {"anything": True}))
    listing = aws.s3.list_objects_v2(Bucket=aws.env["ARCHIVE_BUCKET"], Prefix="unhandled/brand_new_field/")
    assert listing["KeyCount"] == 1


# --- statuses --------------------------------------------------------------------------------

def test_status_never_moves_backwards_and_keeps_pricing_and_timestamps(aws):
    wamid = "wamid.out-1"
    pricing = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    deliver(aws, status(wamid, "read", 1_800_000_300, recipient_id=CUSTOMER))
    deliver(aws, status(wamid, "sent", 1_800_000_100, recipient_id=CUSTOMER, pricing=pricing))
    deliver(aws, status(wamid, "delivered", 1_800_000_200, recipient_id=CUSTOMER))
    stored = message(our_chat(), wamid)
    assert stored["status"] == "read"
    assert stored["pricing"] == pricing
    item = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"]).get_item(Key={"id": wamid})["Item"]
    assert (item["sent_at"], item["delivered_at"], item["read_at"]) == (1_800_000_100, 1_800_000_200, 1_800_000_300)


def test_status_for_a_message_never_sent_here_is_kept(aws):
    deliver(aws, meta_payload("status_sent_marketing_pmp.json"))
    stored = message(our_chat(), "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=")
    assert (stored["direction"], stored["source"], stored["status"]) == ("outbound", "unknown", "sent")
    assert stored["pricing"]["category"] == "marketing"


def test_legacy_cbp_pricing_is_recorded(aws):
    deliver(aws, meta_payload("status_delivered_service_CBP_legacy.json"))
    stored = message(our_chat(), "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA")
    assert stored["pricing"] == {"billable": True, "pricing_model": "CBP", "category": "service"}


def test_failed_keeps_metas_code_and_a_late_sent_does_not_undo_it(aws):
    deliver(aws, meta_payload("status_failed_131049.json"))
    wamid = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA"
    deliver(aws, status(wamid, "sent", 1751142800, recipient_id=CUSTOMER))
    stored = message(our_chat(), wamid)
    assert stored["status"] == "failed"
    assert stored["errors"][0]["code"] == 131049


def test_status_arriving_before_its_echo_then_the_echo_completes_the_message(aws):
    wamid = "wamid.echo-late"
    deliver(aws, status(wamid, "delivered", 1_800_000_100, recipient_id=CUSTOMER))
    deliver(aws, echo(wamid, 1_800_000_000))
    stored = message(our_chat(), wamid)
    assert (stored["source"], stored["status"], stored["text"]) == ("business_app", "delivered", "Here's the info you requested! https://www.meta.com/quest/quest-3/")
    assert stored["timestamp"] == "2027-01-15T08:00:00Z"


# --- echoes ----------------------------------------------------------------------------------

def test_echo_is_outbound_from_the_app_sets_mode_app_and_never_opens_the_window(aws):
    deliver(aws, meta_payload("smb_message_echoes_text.json"))
    view = chat()
    assert view["mode"] == "app"
    assert view["window_expires_at"] is None and view["window_open"] is False
    assert view["last_app_activity_at"] == "2025-02-12T00:43:44Z"
    stored = message(our_chat(), "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA")
    assert (stored["direction"], stored["source"]) == ("outbound", "business_app")
    code, number = api(f"/api/numbers/{NUMBER}")
    assert number["last_app_activity_at"] == "2025-02-12T00:43:44Z"


def test_echo_does_not_extend_an_open_window(aws):
    deliver(aws, text_message("wamid.in", 1_800_000_000), echo("wamid.app", 1_800_050_000, to=f"+{CUSTOMER}"))
    view = chat()
    assert view["window_expires_at"] == "2027-01-16T08:00:00Z"
    assert view["mode"] == "app"


def test_edit_and_revoke_echoes_update_the_original_in_any_order(aws):
    edit = echo("wamid.edit-1", 1_800_000_100, type="edit", edit={"original_message_id": "wamid.orig", "message": {"type": "text", "text": {"body": "corrected"}}})
    del edit["entry"][0]["changes"][0]["value"]["message_echoes"][0]["text"]
    deliver(aws, edit, echo("wamid.orig", 1_800_000_000, text={"body": "typo"}))
    stored = message(our_chat(), "wamid.orig")
    assert stored["text"] == "corrected" and stored["edited_at"] == "2027-01-15T08:01:40Z"
    assert [m["id"] for m in messages_of(our_chat())] == ["wamid.orig"]  # the edit is not a new message
    revoke = echo("wamid.revoke-1", 1_800_000_200, type="revoke", revoke={"original_message_id": "wamid.orig"})
    del revoke["entry"][0]["changes"][0]["value"]["message_echoes"][0]["text"]
    deliver(aws, revoke)
    stored = message(our_chat(), "wamid.orig")
    assert stored["revoked_at"] == "2027-01-15T08:03:20Z" and stored["text"] is None


# --- history ---------------------------------------------------------------------------------

def history_chunk(phase: int, chunk: int, progress: int, wamids: list[str], customer: str = CUSTOMER) -> dict:
    payload = meta_payload("history_approved_phase0_chunk1.json")
    block = payload["entry"][0]["changes"][0]["value"]["history"][0]
    block["metadata"] = {"phase": phase, "chunk_order": chunk, "progress": progress}
    template = block["threads"][0]["messages"][2]
    block["threads"] = [{"id": customer, "messages": [dict(copy.deepcopy(template), id=w, timestamp=str(1_700_000_000 + i)) for i, w in enumerate(wamids)]}]
    return payload


def test_history_chunks_in_any_order_are_imported_once_with_progress(aws):
    first = history_chunk(0, 1, 30, ["wamid.h1", "wamid.h2"])
    second = history_chunk(0, 2, 60, ["wamid.h3"])
    last = history_chunk(1, 1, 100, ["wamid.h4"])
    deliver(aws, last, first, second, first)  # out of order, with a replay
    ids = [m["id"] for m in messages_of(our_chat())]
    assert sorted(ids) == ["wamid.h1", "wamid.h2", "wamid.h3", "wamid.h4"]
    assert all(m["history"] and m["source"] == "history" and m["status"] == "read" for m in messages_of(our_chat()))
    view = chat()
    assert view["window_expires_at"] is None  # history never opens a window
    assert view["mode"] == "closed"  # and never wakes a bot
    code, number = api(f"/api/numbers/{NUMBER}")
    assert number["history_sync"] == {"phase": 1, "progress": 100, "chunks": ["0:1", "0:2", "1:1"], "declined": False, "complete": True}
    assert number["coexistence_state"] == "connected"


def test_metas_history_example_and_media_followup_in_both_orders(aws):
    deliver(aws, meta_payload("history_media_followup.json"), meta_payload("history_approved_phase0_chunk1.json"))
    media = message(our_chat(), "wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA")
    assert (media["type"], media["text"]) == ("image", "Black Prince echeveria")
    assert len(messages_of(our_chat())) == 3
    assert len(messages_of(chat_of(NUMBER, "12125557890"))) == 1


def test_media_followup_after_the_placeholder_replaces_it(aws):
    deliver(aws, meta_payload("history_approved_phase0_chunk1.json"))
    placeholder = message(our_chat(), "wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA")
    assert placeholder["type"] == "media_placeholder" and placeholder["status"] == "played"
    deliver(aws, meta_payload("history_media_followup.json"))
    media = message(our_chat(), "wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA")
    assert (media["type"], media["content"]["id"], media["status"]) == ("image", "24230790383178626", "played")


def test_history_does_not_overwrite_a_message_already_received_live(aws):
    wamid = "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA"  # in both Meta examples
    deliver(aws, meta_payload("smb_message_echoes_text.json"), meta_payload("history_approved_phase0_chunk1.json"))
    stored = message(our_chat(), wamid)
    assert stored["source"] == "business_app" and stored["history"] is False


def test_history_declined_is_recorded_on_the_number(aws):
    deliver(aws, wrap_value("history", meta_payload("history_declined_VALUE_ONLY.json")))
    code, number = api(f"/api/numbers/{NUMBER}")
    assert number["history_sync"]["declined"] is True


def test_big_history_payload_through_the_archive(aws):
    # Over a megabyte in long messages rather than many short ones: the body's size is what takes
    # the archive's path, and the emulator writes each message's item slowly.
    payload = history_chunk(2, 7, 80, [f"wamid.big-{i}" for i in range(1500)])
    long_text = lambda wamid: f"{wamid}: " + "the whole of a long message from the history " * 16  # noqa: E731
    for message in payload["entry"][0]["changes"][0]["value"]["history"][0]["threads"][0]["messages"]:
        message["text"] = {"body": long_text(message["id"])}
    assert len(json.dumps(payload)) > 1_000_000
    deliver(aws, payload)
    code, body = api(f"/api/chats/{our_chat()}/messages?limit=200")
    assert len(body["items"]) == 200 and body["next"]
    assert all(item["text"] == long_text(item["id"]) for item in body["items"])  # each stored whole
    pages = aws.session.client("dynamodb").get_paginator("scan").paginate(TableName=aws.env["MESSAGES_TABLE"], Select="COUNT")
    assert sum(page["Count"] for page in pages) == 1500


# --- contacts and account ---------------------------------------------------------------------

def test_app_contact_add_names_the_chat_and_remove_falls_back_to_profile(aws):
    deliver(aws, meta_payload("messages_text.json"), meta_payload("smb_app_state_sync_add.json"))
    assert chat()["contact_name"] == "Pablo Morales"
    remove = meta_payload("smb_app_state_sync_add.json")
    item = remove["entry"][0]["changes"][0]["value"]["state_sync"][0]
    item.update({"action": "remove", "metadata": {"timestamp": "1739321100"}})
    stale_add = meta_payload("smb_app_state_sync_add.json")
    stale_add["entry"][0]["changes"][0]["value"]["state_sync"][0]["metadata"]["timestamp"] = "1739320000"
    deliver(aws, remove, stale_add)
    assert chat()["contact_name"] == "Sheena Nelson"


def account_update(event: str, time: int, **value) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": time, "changes": [{"field": "account_update", "value": {"event": event, **value}}]}]}


def test_number_coexistence_state_follows_account_updates_in_event_order(aws):
    deliver(aws, meta_payload("messages_text.json"))
    deliver(aws, account_update("PARTNER_ADDED", 1_800_000_000))
    assert api(f"/api/numbers/{NUMBER}")[1]["coexistence_state"] == "connected"
    removed = account_update("PARTNER_REMOVED", 1_800_000_500, disconnection_info={"reason": "PRIMARY_INACTIVITY", "initiated_by": "SYSTEM"})
    deliver(aws, removed, account_update("PARTNER_ADDED", 1_800_000_000), removed)
    number = api(f"/api/numbers/{NUMBER}")[1]
    assert (number["coexistence_state"], number["coexistence_reason"]) == ("disconnected", "PRIMARY_INACTIVITY")
    deliver(aws, account_update("ACCOUNT_RECONNECTED", 1_800_001_000))
    number = api(f"/api/numbers/{NUMBER}")[1]
    assert (number["coexistence_state"], number["coexistence_reason"]) == ("connected", None)
    deliver(aws, account_update("ACCOUNT_OFFBOARDED", 1_800_002_000), account_update("ACCOUNT_VIOLATION", 1_800_003_000))
    assert api(f"/api/numbers/{NUMBER}")[1]["coexistence_state"] == "offboarded"
    events = aws.dynamodb.Table(aws.env["ACCOUNTS_TABLE"]).query(
        KeyConditionExpression="waba_id = :w AND begins_with(sk, :e)",
        ExpressionAttributeValues={":w": "102290129340398", ":e": "EVENT#"},
    )["Items"]
    assert [e["event"] for e in events] == ["PARTNER_ADDED", "PARTNER_REMOVED", "ACCOUNT_RECONNECTED", "ACCOUNT_OFFBOARDED", "ACCOUNT_VIOLATION"]


def test_metas_partner_added_example_applies_to_the_waba_it_names(aws):
    deliver(aws, meta_payload("account_update_partner_added.json"))
    state = aws.dynamodb.Table(aws.env["ACCOUNTS_TABLE"]).get_item(Key={"waba_id": "980198427658004", "sk": "STATE"})["Item"]
    assert state["state"] == "connected"


# --- failure handling --------------------------------------------------------------------------

def test_a_storage_error_fails_only_its_record(aws, monkeypatch):
    real = MessageStore.record

    def flaky(self, msg):
        if msg.id == "wamid.poison":
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "UpdateItem")
        return real(self, msg)

    monkeypatch.setattr(MessageStore, "record", flaky)
    event = sqs_records(
        aws,
        [json.dumps(text_message("wamid.fine", 1_800_000_000)), json.dumps(text_message("wamid.poison", 1_800_000_001))],
        {"coexist-body": "inline"},
    )
    result = ingest_function.lambda_handler(event, Context())
    poisoned = [r["messageId"] for r in event["Records"] if "wamid.poison" in r["body"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": poisoned[0]}]}
    assert [m["id"] for m in messages_of(our_chat())] == ["wamid.fine"]


def test_a_failed_record_is_logged_by_its_id_and_error_type_only(aws, monkeypatch):
    import io
    import logging

    monkeypatch.setattr(MessageStore, "record", lambda self, m: (_ for _ in ()).throw(
        ClientError({"Error": {"Code": "InternalServerError", "Message": "item wamid.secret"}}, "UpdateItem")))
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(ingest_function.logger.registered_formatter)
    logging.getLogger(ingest_function.logger.name).addHandler(handler)
    try:
        event = sqs_records(aws, [json.dumps(text_message("wamid.secret", 1_800_000_000, body="private words"))], {"coexist-body": "inline"})
        assert len(ingest_function.lambda_handler(event, Context())["batchItemFailures"]) == 1
    finally:
        logging.getLogger(ingest_function.logger.name).removeHandler(handler)
    failures = [json.loads(line) for line in logs.getvalue().splitlines() if "record failed" in line]
    assert len(failures) == 1
    assert failures[0]["level"] == "ERROR"
    assert failures[0]["message_id"] == event["Records"][0]["messageId"]
    assert failures[0]["error_type"] == "ClientError"
    assert "wamid.secret" not in logs.getvalue() and "private words" not in logs.getvalue()  # neither the error's text nor the body


def test_record_failing_every_time_lands_in_the_dlq(aws, monkeypatch):
    monkeypatch.setattr(MessageStore, "record", lambda self, m: (_ for _ in ()).throw(ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")))
    assert post_webhook(text_message("wamid.doomed", 1_800_000_000))["statusCode"] == 200
    queue, dlq = aws.env["INBOUND_QUEUE_URL"], aws.env["INBOUND_DLQ_URL"]
    from local.poller import sqs_event
    from coexist.resources import INBOUND_MAX_RECEIVES

    for _ in range(INBOUND_MAX_RECEIVES):
        messages = aws.sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0, MessageAttributeNames=["All"], AttributeNames=["All"])["Messages"]
        result = ingest_function.lambda_handler(sqs_event(messages, aws.queue_arn), Context())
        assert len(result["batchItemFailures"]) == 1
    assert aws.sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    [parked] = aws.sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert "wamid.doomed" in parked["Body"]


def test_queue_record_without_a_whatsapp_payload_is_quarantined_not_retried(aws, capsys):
    from tests.integration.test_webhook import emitted_metrics

    event = sqs_records(aws, ["not json at all", json.dumps({"hello": "world"})])
    capsys.readouterr()
    assert ingest_function.lambda_handler(event, Context()) == {"batchItemFailures": []}
    assert "IngestQuarantined" in emitted_metrics(capsys.readouterr().out)  # what its alarm watches
    listing = aws.s3.list_objects_v2(Bucket=aws.env["ARCHIVE_BUCKET"], Prefix="quarantine/")
    assert listing["KeyCount"] == 2


# --- AWS End User Messaging Social ingress ---------------------------------------------------

def test_social_messaging_sns_notification_feeds_the_same_ingest(aws):
    entry = meta_payload("messages_text.json")["entry"][0]
    event = {
        "context": {"MetaWabaIds": [{"wabaId": "102290129340398", "arn": "arn:aws:social-messaging:us-east-1:123456789012:waba/x"}],
                    "MetaPhoneNumberIds": [{"metaPhoneNumberId": NUMBER, "arn": "arn:aws:social-messaging:us-east-1:123456789012:phone-number-id/y"}]},
        "whatsAppWebhookEntry": json.dumps(entry),
        "aws_account_id": "123456789012",
        "message_timestamp": "2025-06-08T20:59:44.271279391Z",
        "messageId": "6d69f07a-c317-4278-9d5c-6a84078419ec",
    }
    sns = aws.session.client("sns")
    sns.publish(TopicArn=aws.env["SOCIAL_MESSAGING_TOPIC_ARN"], Message=json.dumps(event))
    sns.publish(TopicArn=aws.env["SOCIAL_MESSAGING_TOPIC_ARN"], Message=json.dumps(event))  # duplicate
    from tests.integration.helpers import ingest_queued

    assert ingest_queued(aws) == [{"batchItemFailures": []}]
    assert [m["id"] for m in messages_of(our_chat())] == [TEXT_WAMID]
    # Archived as received, through the raw archive's queue as the webhook's bodies are: both deliveries.
    from coexist.store.archive import raw_bodies
    from tests.integration.helpers import archive_queued

    [written] = archive_queued(aws)
    stored = raw_bodies(aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=written["key"])["Body"].read())
    assert [json.loads(body) for _, body in stored] == [event, event]


def test_a_social_messaging_body_that_cannot_travel_through_the_archive_queue_gets_an_object_of_its_own(aws):
    from coexist import wiring

    archive = wiring.inbox().archive
    assert archive.batches is not None  # ingest is told the raw archive's queue
    not_utf8 = b'{"whatsAppWebhookEntry": "\xff"}'
    archive.keep_raw_in_a_batch(not_utf8)
    [key] = [o["Key"] for o in aws.s3.list_objects_v2(Bucket=aws.env["ARCHIVE_BUCKET"], Prefix="raw/")["Contents"]]
    assert aws.s3.get_object(Bucket=aws.env["ARCHIVE_BUCKET"], Key=key)["Body"].read() == not_utf8
