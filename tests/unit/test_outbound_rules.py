"""Outbound rules without AWS: request limits, the policy table, pacing math, Meta's error codes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from coexist.domain import policy, send_errors
from coexist.domain.pacing import MICROS, Rate, reserve
from coexist.domain.send_errors import Action
from coexist.outbound.requests import graph_payload, parse_send_request
from tests.conftest import FIXTURES

import json


def _invalid(body: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        parse_send_request(body)
    return str(caught.value)


def test_text_renders_metas_request_shape():
    request = parse_send_request({"type": "text", "text": "As requested, here's the link to our latest product: https://www.meta.com/quest/quest-3/", "preview_url": True})
    expected = json.loads((FIXTURES / "send_api" / "request_text.json").read_text())
    assert graph_payload(request, to="+16505551234") == expected


def test_reply_buttons_render_metas_request_shape_apart_from_the_image_header():
    request = parse_send_request({
        "type": "interactive",
        "body": "Hi Pablo! Your gardening workshop is scheduled for 9am tomorrow. Use the buttons if you need to reschedule. Thank you!",
        "footer": "Lucky Shrub: Your gateway to succulents!™",
        "buttons": [{"id": "change-button", "title": "Change"}, {"id": "cancel-button", "title": "Cancel"}],
    })
    expected = json.loads((FIXTURES / "send_api" / "request_interactive_buttons.json").read_text())
    del expected["interactive"]["header"]  # media headers are not offered yet
    assert graph_payload(request, to="+16505551234") == expected


def test_list_renders_metas_request_shape():
    expected = json.loads((FIXTURES / "send_api" / "request_interactive_list.json").read_text())
    interactive = expected["interactive"]
    request = parse_send_request({
        "type": "interactive", "header": interactive["header"]["text"], "body": interactive["body"]["text"],
        "footer": interactive["footer"]["text"], "list_button": interactive["action"]["button"],
        "sections": interactive["action"]["sections"],
    })
    assert graph_payload(request, to="+16505551234") == expected


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"type": "text", "text": "x" * 4097}, "4096"),
        ({"type": "text", "text": ""}, "at least 1"),
        ({"type": "interactive", "body": "b", "buttons": [{"id": str(i), "title": "t"} for i in range(4)]}, "at most 3"),
        ({"type": "interactive", "body": "b", "buttons": [{"id": "1", "title": "x" * 21}]}, "20"),
        ({"type": "interactive", "body": "b", "buttons": [{"id": "1", "title": "a"}, {"id": "1", "title": "b"}]}, "unique"),
        ({"type": "interactive", "body": "b", "list_button": "Pick", "sections": [{"rows": [{"id": str(i), "title": "r"} for i in range(11)]}]}, "10 rows"),
        ({"type": "interactive", "body": "b", "sections": [{"rows": [{"id": "1", "title": "r"}]}]}, "list_button"),
        ({"type": "image", "link": "http://insecure.example/x.png"}, "https"),
        ({"type": "image", "link": "https://x.example/a.png", "media_id": "1"}, "exactly one"),
        ({"type": "audio", "media_id": "1", "caption": "no"}, "caption"),
        ({"type": "template", "template": {"name": "Bad Name", "language": "en_US"}}, "pattern"),
        ({"type": "sticker", "media_id": "1"}, "does not match any of the expected tags"),
        ({"type": "text", "text": "hi", "surprise": 1}, "Extra inputs"),
    ],
)
def test_requests_breaking_metas_limits_are_refused(body, fragment):
    assert fragment in _invalid(body)


def test_template_language_as_code_and_body_parameter_count():
    request = parse_send_request({"type": "template", "template": {"name": "appointment_reminder", "language": "en_US", "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "Tuesday"}]}]}})
    assert request.template.language.code == "en_US"
    assert request.template.body_parameters() == 2
    assert graph_payload(request, "1")["template"]["language"] == {"code": "en_US", "policy": "deterministic"}


def context(**overrides) -> policy.SendContext:
    values = dict(free_form=True, window_open=True, number_state="connected")
    values.update(overrides)
    return policy.SendContext(**values)


def template(**overrides) -> policy.SendContext:
    values = dict(free_form=False, window_open=False, template_status="APPROVED", template_category="UTILITY", template_name="t",
                  template_params_expected=1, template_params_given=1)
    values.update(overrides)
    return context(**values)


@pytest.mark.parametrize(
    "ctx, code",
    [
        (context(), None),
        (context(window_open=False), "window_closed"),
        (context(number_state="offboarded"), "number_offboarded"),
        (context(number_state="disconnected", window_open=False), "number_offboarded"),
        (template(), None),
        (template(window_open=True), None),
        (template(template_status=None), "template_not_approved"),
        (template(template_status="PENDING"), "template_not_approved"),
        (template(template_status="REJECTED"), "template_not_approved"),
        (template(template_params_given=2), "template_parameters"),
        (template(template_category="MARKETING", consent={"marketing": "withdrawn"}), "opted_out"),
        (template(template_category="MARKETING"), "no_consent"),  # never granted
        (template(template_category="MARKETING", consent={"marketing": "granted"}), None),
        # A marketing template is marketing whatever purpose the send names.
        (template(template_category="MARKETING", purpose="utility", consent={"utility": "granted"}), "no_consent"),
        (template(template_category="UTILITY", consent={"marketing": "withdrawn"}), None),
        (template(template_category="UTILITY"), None),  # utility: only a withdrawal refuses
        (template(template_category="UTILITY", consent={"utility": "withdrawn"}), "opted_out"),
        (template(template_category="UTILITY", purpose="reminders"), "no_consent"),
        (template(template_category="UTILITY", purpose="reminders", consent={"reminders": "granted"}), None),
        (template(template_category="UTILITY", purpose="reminders", consent={"reminders": "withdrawn"}), "opted_out"),
        (template(template_category="AUTHENTICATION", consent={"utility": "withdrawn", "marketing": "withdrawn"}), None),
        # Free-form replies inside the window are the conversation the customer opened.
        (context(consent={"marketing": "withdrawn", "utility": "withdrawn"}), None),
    ],
)
def test_policy_table(ctx, code):
    refusal = policy.check(ctx)
    assert (refusal.code if refusal else None) == code
    if refusal:
        assert refusal.http_status in (409, 422) and refusal.message


def test_gcra_paces_at_the_rate_with_the_burst_allowed_up_front():
    rate = Rate(per_second=20, burst=1)
    tat, waits = None, []
    for _ in range(5):
        reservation = reserve(tat, now_us=0, rate=rate)
        tat = reservation.new_tat_us
        waits.append(reservation.wait_us)
    assert waits == [0, 50_000, 100_000, 150_000, 200_000]
    burst = Rate(per_second=1 / 6, burst=3)
    tat, waits = None, []
    for _ in range(4):
        reservation = reserve(tat, now_us=0, rate=burst)
        tat = reservation.new_tat_us
        waits.append(reservation.wait_us / MICROS)
    assert waits == [0, 0, 0, 6.0]
    assert reserve(tat, now_us=100 * MICROS, rate=burst).wait_us == 0  # idle time refills


def test_the_slot_after_a_send_that_may_leave_late_counts_from_its_latest_departure():
    """A send leaves only once the write that booked it returns: an idle bucket's first send goes
    at once, and the next slot is a period after the latest moment that send may have left."""
    rate, allowance = Rate(per_second=20), 30_000
    first = reserve(None, now_us=0, rate=rate, departure_allowance_us=allowance)
    assert first.wait_us == 0 and first.new_tat_us == allowance + 50_000
    second = reserve(first.new_tat_us, now_us=0, rate=rate, departure_allowance_us=allowance)
    assert second.wait_us == 80_000 and second.new_tat_us == 130_000  # booked ahead: a period apart
    # A slot closer than the allowance (10 ms ahead) may also leave late: the next counts from then.
    close = reserve(10_000, now_us=0, rate=rate, departure_allowance_us=allowance)
    assert close.wait_us == 10_000 and close.new_tat_us == allowance + 50_000
    # A bucket booked further ahead than the allowance is paced as without it.
    assert reserve(500_000, now_us=0, rate=rate, departure_allowance_us=allowance) == reserve(500_000, now_us=0, rate=rate)
    # A bucket that allows a burst still allows all of it, its last send within the allowance.
    burst = Rate(per_second=1 / 6, burst=3)
    tat, waits = None, []
    for _ in range(4):
        reservation = reserve(tat, now_us=0, rate=burst, departure_allowance_us=allowance)
        tat, waits = reservation.new_tat_us, waits + [reservation.wait_us]
    assert waits == [0, 0, allowance, allowance + 6 * MICROS]


@pytest.mark.parametrize(
    "code, status, action, reason",
    [
        (130429, 400, Action.BACK_OFF, "rate_limited"),
        (131056, 400, Action.BACK_OFF, "pair_rate_limited"),
        (131000, 500, Action.RETRY, "meta_unknown_error"),
        (None, 503, Action.RETRY, "meta_unavailable"),
        (None, None, Action.RETRY, "network_error"),
        (131047, 400, Action.FAIL, "window_closed"),
        (131026, 400, Action.FAIL, "undeliverable"),
        (131049, 400, Action.FAIL, "ecosystem_limit"),
        (131050, 400, Action.FAIL, "opted_out"),
        (132000, 400, Action.FAIL, "template_parameters"),
        (132001, 400, Action.FAIL, "template_missing"),
        (190, 401, Action.STOP_NUMBER, "access_token_invalid"),
        (368, 400, Action.STOP_NUMBER, "number_temporarily_blocked"),
        (999999, 400, Action.FAIL, "meta_error_999999"),
    ],
)
def test_meta_error_codes_decide_what_happens(code, status, action, reason):
    verdict = send_errors.classify(code, status)
    assert (verdict.action, verdict.reason) == (action, reason)
    assert send_errors.records_marketing_opt_out(code) == (code == 131050)


def test_a_customer_known_only_by_bsuid_is_sent_to_with_recipient_never_both():
    from coexist.domain import send_errors

    request = parse_send_request({"type": "text", "text": "Hi"})
    assert graph_payload(request, to=None, recipient="US.13491208655302741918") == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "recipient": "US.13491208655302741918",
        "type": "text", "text": {"body": "Hi", "preview_url": False},
    }
    with_phone = graph_payload(request, to="16505551234", recipient="US.13491208655302741918")
    assert with_phone["to"] == "16505551234" and "recipient" not in with_phone  # Meta: `to` wins anyway
    with pytest.raises(ValueError):
        graph_payload(request, to=None, recipient=None)
    assert send_errors.classify(131062, 400).reason == "bsuid_recipient_unsupported"
