"""Meta's own example payloads parse into the models and mean what the inbox expects."""

from __future__ import annotations

import json

import pytest

from coexist.domain.identity import Identifiers
from coexist.domain.interpret import interpret, message_text, normalize_wa_id
from coexist.intake import why_not_an_envelope
from coexist.meta.models import HistoryValue, WebhookEnvelope
from tests.conftest import FIXTURES, meta_payload, wrap_value

ENVELOPES = sorted(p.name for p in (FIXTURES / "meta_docs").glob("*.json") if "entry" in json.loads(p.read_text()))


@pytest.mark.parametrize("name", ENVELOPES)
def test_every_meta_envelope_validates_and_nothing_is_unhandled(name):
    found = interpret(WebhookEnvelope.model_validate(meta_payload(name)))
    assert found.unhandled == []


def test_text_message_becomes_customer_message_opening_the_window():
    found = interpret(WebhookEnvelope.model_validate(meta_payload("messages_text.json")))
    [message] = found.messages
    assert (message.direction, message.source, message.type) == ("inbound", "customer", "text")
    assert message.text == "Does it come in another color?"
    assert message.timestamp == 1749416383
    chat = found.chats[Identifiers("106540352242922", wa_id="16505551234")]
    assert chat.last_customer_message_at == 1749416383
    assert found.profiles[Identifiers("106540352242922", wa_id="16505551234")].profile_name == "Sheena Nelson"


@pytest.mark.parametrize(
    "name, text, context_id",
    [
        ("messages_interactive_button_reply.json", "Change", "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJBM0Y4RUU0RUNFQkFDMjYzQUMA"),
        ("messages_interactive_list_reply.json", "Priority Mail Express", "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIwMjg0RkMxOEMyMkNEQUFFRDgA"),
    ],
)
def test_interactive_replies_keep_the_chosen_title_and_the_replied_message(name, text, context_id):
    [message] = interpret(WebhookEnvelope.model_validate(meta_payload(name))).messages
    assert message.text == text
    assert message.context_id == context_id
    assert message.content["type"] in ("button_reply", "list_reply")


def test_echo_is_business_app_outbound_and_never_touches_the_window():
    found = interpret(WebhookEnvelope.model_validate(meta_payload("smb_message_echoes_text.json")))
    [echo] = found.messages
    assert (echo.direction, echo.source, echo.wa_id) == ("outbound", "business_app", "16505551234")
    chat = found.chats[Identifiers("106540352242922", wa_id="16505551234")]
    assert chat.last_customer_message_at is None
    assert chat.last_app_activity_at == 1739321024
    assert found.numbers["106540352242922"].app_activity_at == 1739321024


def test_metas_verbatim_echo_example_is_not_json_and_would_be_quarantined():
    raw = (FIXTURES / "meta_docs" / "smb_message_echoes_text_VERBATIM_INVALID_JSON.txt").read_bytes()
    assert why_not_an_envelope(raw) == "not JSON"


def test_history_chunk_directions_status_and_progress():
    found = interpret(WebhookEnvelope.model_validate(meta_payload("history_approved_phase0_chunk1.json")))
    by_id = {m.id: m for m in found.history_messages}
    assert len(by_id) == 4
    first = by_id["wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA"]
    assert (first.direction, first.source, first.status, first.history_status) == ("outbound", "history", "read", "READ")
    thanks = by_id["wamid.N0FCNjMAHBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0"]
    assert (thanks.direction, thanks.wa_id) == ("inbound", "16505551234")
    assert by_id["wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA"].type == "media_placeholder"
    [chunk] = found.history_chunks
    assert (chunk.phase, chunk.chunk_order, chunk.progress, chunk.message_count) == (0, 1, 55, 4)
    # History never opens a window.
    assert all(c.last_customer_message_at is None for c in found.chats.values())


def test_history_media_followup_is_a_media_arrival_for_the_placeholder():
    found = interpret(WebhookEnvelope.model_validate(meta_payload("history_media_followup.json")))
    [arrival] = found.media_arrivals
    assert arrival.message.id == "wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA"
    assert (arrival.message.type, arrival.message.text) == ("image", "Black Prince echeveria")


def test_history_declined_value_only_example():
    envelope = wrap_value("history", meta_payload("history_declined_VALUE_ONLY.json"))
    found = interpret(WebhookEnvelope.model_validate(envelope))
    [declined] = found.history_declined
    assert declined.code == 2593109
    assert HistoryValue.model_validate(meta_payload("history_declined_VALUE_ONLY.json")).history[0].errors


def test_statuses_carry_pricing_in_both_models_and_errors():
    pmp = interpret(WebhookEnvelope.model_validate(meta_payload("status_sent_marketing_pmp.json"))).statuses[0]
    assert pmp.pricing == {"billable": True, "pricing_model": "PMP", "type": "regular", "category": "marketing"}
    cbp = interpret(WebhookEnvelope.model_validate(meta_payload("status_delivered_service_CBP_legacy.json"))).statuses[0]
    assert cbp.pricing == {"billable": True, "pricing_model": "CBP", "category": "service"}
    failed = interpret(WebhookEnvelope.model_validate(meta_payload("status_failed_131049.json"))).statuses[0]
    assert failed.status == "failed" and failed.errors[0]["code"] == 131049
    assert "healthy ecosystem" in failed.errors[0]["details"]
    bare = interpret(WebhookEnvelope.model_validate(meta_payload("status_v24_no_conversation_no_pricing.json"))).statuses[0]
    assert bare.pricing is None and bare.conversation is None


def test_state_sync_add():
    [change] = interpret(WebhookEnvelope.model_validate(meta_payload("smb_app_state_sync_add.json"))).app_contacts
    assert (change.wa_id, change.action, change.full_name, change.timestamp) == ("16505551234", "add", "Pablo Morales", 1739321024)


@pytest.mark.parametrize(
    "name, waba, event",
    [
        ("account_update_partner_added.json", "980198427658004", "PARTNER_ADDED"),
        ("account_update_account_deleted.json", "102290129340398", "ACCOUNT_DELETED"),
        ("account_update_partner_app_uninstalled_VERBATIM_ODD_SHAPE.json", "184943124712545", "PARTNER_APP_UNINSTALLED"),
        ("account_update_volume_tier.json", "102290129340398", "VOLUME_BASED_PRICING_TIER_UPDATE"),
    ],
)
def test_account_updates_name_the_waba_and_event(name, waba, event):
    [found] = interpret(WebhookEnvelope.model_validate(meta_payload(name))).account_events
    assert (found.waba_id, found.event) == (waba, event)


def test_unknown_field_and_unknown_message_type_are_kept_not_errors():
    envelope = meta_payload("messages_text.json")
    envelope["entry"][0]["changes"].append({"field": "brand_new_field", "value": {"x": 1}})
    message = envelope["entry"][0]["changes"][0]["value"]["messages"][0]
    message["type"] = "hologram"
    message["hologram"] = {"depth": 3}
    found = interpret(WebhookEnvelope.model_validate(envelope))
    assert [u.field for u in found.unhandled] == ["brand_new_field"]
    assert found.unknown_message_types == ["hologram"]
    assert found.messages[0].content == {"depth": 3}


def test_invalid_change_value_is_unhandled_and_the_rest_still_interpreted():
    envelope = meta_payload("messages_text.json")
    broken = json.loads(json.dumps(envelope["entry"][0]["changes"][0]))
    del broken["value"]["metadata"]
    envelope["entry"][0]["changes"].insert(0, broken)
    found = interpret(WebhookEnvelope.model_validate(envelope))
    assert len(found.unhandled) == 1 and "invalid messages value" in found.unhandled[0].reason
    assert len(found.messages) == 1


def test_a_non_whatsapp_object_is_refused():
    with pytest.raises(ValueError):
        WebhookEnvelope.model_validate({"object": "page", "entry": []})


def test_every_entry_change_and_item_is_visited():
    envelope = meta_payload("messages_text.json")
    change = envelope["entry"][0]["changes"][0]
    template = change["value"]["messages"][0]
    change["value"]["messages"] = [dict(template, id=f"wamid.{i}", timestamp=str(1749416383 + i)) for i in range(1000)]
    envelope["entry"].append(json.loads(json.dumps(envelope["entry"][0])))
    found = interpret(WebhookEnvelope.model_validate(envelope))
    assert len(found.messages) == 2000
    assert found.chats[Identifiers("106540352242922", wa_id="16505551234")].last_customer_message_at == 1749416383 + 999


@pytest.mark.parametrize("raw, expected", [("+1 (650) 555-1234", "16505551234"), ("16505551234", "16505551234"), ("US.13491208655302741918", "US.13491208655302741918")])
def test_wa_id_normalisation(raw, expected):
    assert normalize_wa_id(raw) == expected


def test_message_text_by_type():
    assert message_text("image", {"caption": "c", "id": "1"}) == "c"
    assert message_text("reaction", {"message_id": "x", "emoji": ""}) is None
    assert message_text("button", {"text": "Yes", "payload": "y"}) == "Yes"
    assert message_text("location", {"latitude": 1.5, "longitude": 2, "name": "Clinic"}) == "Clinic"
    assert message_text("contacts", [{"name": {}}]) is None


def test_one_malformed_message_does_not_hold_back_its_batch():
    envelope = meta_payload("messages_text.json")
    value = envelope["entry"][0]["changes"][0]["value"]
    good = value["messages"][0]
    value["messages"] = [good, {"id": "wamid.broken", "type": "text"}, dict(good, id="wamid.second")]
    found = interpret(WebhookEnvelope.model_validate(envelope))
    assert [m.id for m in found.messages] == [good["id"], "wamid.second"]
    [kept] = found.unhandled
    assert kept.raw["value"]["messages"][1] == {"id": "wamid.broken", "type": "text"}  # archived whole


def test_business_scoped_user_ids_stand_in_for_missing_phone_numbers():
    envelope = meta_payload("messages_text.json")
    value = envelope["entry"][0]["changes"][0]["value"]
    message = value["messages"][0]
    del message["from"]
    message["from_user_id"] = "US.13491208655302741918"
    value["contacts"] = [{"profile": {"name": "Hidden"}, "user_id": "US.13491208655302741918"}]
    found = interpret(WebhookEnvelope.model_validate(envelope))
    # No phone number: the customer is named by the BSUID alone (and never by a made-up wa_id).
    hidden = Identifiers("106540352242922", user_id="US.13491208655302741918")
    assert (found.messages[0].wa_id, found.messages[0].identifiers) == (None, hidden)
    assert found.profiles[hidden].profile_name == "Hidden"
    assert found.chats[hidden].last_customer_message_at == found.messages[0].timestamp
    status = meta_payload("status_v24_no_conversation_no_pricing.json")
    entry = status["entry"][0]["changes"][0]["value"]["statuses"][0]
    del entry["recipient_id"]
    entry["recipient_user_id"] = "US.13491208655302741918"
    [update] = interpret(WebhookEnvelope.model_validate(status)).statuses
    assert (update.wa_id, update.identifiers) == (None, hidden)
