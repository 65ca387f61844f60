"""A payload that fails validation never carries its values into an error, and an invalid edit
echo is kept aside rather than failing its whole webhook."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from coexist.domain.interpret import interpret
from coexist.meta import models
from coexist.outbound.requests import parse_send_request

SECRET = "my HIV test result"


def echo_envelope(*echoes: dict) -> models.WebhookEnvelope:
    return models.WebhookEnvelope.model_validate({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "smb_message_echoes",
        "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106"},
                  "message_echoes": list(echoes)},
    }]}]})


def test_an_invalid_edit_is_unhandled_and_the_other_echoes_still_count():
    found = interpret(echo_envelope(
        {"from": "15550783881", "to": "16505551234", "id": "wamid.ok", "timestamp": "1700000000", "type": "text", "text": {"body": "hi"}},
        {"from": "15550783881", "to": "16505551234", "id": "wamid.bad", "timestamp": "1700000001", "type": "edit",
         "edit": {"original_message_id": "wamid.ok", "message": {"type": "text", "text": SECRET}}},
        {"from": "15550783881", "to": "16505551234", "id": "wamid.good", "timestamp": "1700000002", "type": "edit",
         "edit": {"original_message_id": "wamid.ok", "message": {"type": "text", "text": {"body": "hello"}}}},
    ))
    assert [m.id for m in found.messages] == ["wamid.ok"]
    assert [e.text for e in found.edits] == ["hello"]
    [unhandled] = found.unhandled
    assert unhandled.field == "smb_message_echoes" and unhandled.reason == "invalid edit: 1 validation error(s)"
    assert SECRET not in unhandled.reason  # the raw item is archived; the reason, which is logged, is not it


@pytest.mark.parametrize("validate", [
    lambda: models.Message.model_validate({"id": "x", "timestamp": 1, "type": "text", "text": SECRET}),
    lambda: parse_send_request({"type": "text", "text": SECRET, "extra": SECRET}),
    lambda: parse_send_request(SECRET),
])
def test_validation_errors_render_without_the_input(validate):
    with pytest.raises(ValidationError) as raised:
        validate()
    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value)
