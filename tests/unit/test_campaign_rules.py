"""The campaign rules without AWS: the recipient list, the campaign's states, the messaging limit."""

from __future__ import annotations

import pytest

from coexist.domain.campaigns import (
    BadRecipients,
    CampaignState,
    Recipient,
    entries_from_csv,
    may_move,
    pages,
    phone_of,
    prepare,
    skip_reason,
)
from coexist.domain.messaging_limit import HOUR_S, UNLIMITED, limit_of, room_for


@pytest.mark.parametrize("raw, digits", [
    ("16505551234", "16505551234"), ("+1 (650) 555-1234", "16505551234"), ("+66 81 234 5678", "66812345678"),
    ("447700900123", "447700900123"),
])
def test_a_number_as_people_write_it_is_its_digits(raw, digits):
    assert phone_of(raw) == digits


@pytest.mark.parametrize("raw", ["", "12ab34", "0812345678", "1234567", "1" * 16, "+1 650 555 1234 ext 5", None, 16505551234, "US.1349"])
def test_what_cannot_be_a_whatsapp_number_is_invalid(raw):
    assert phone_of(raw) is None


def test_the_list_is_validated_and_deduplicated_keeping_the_first_and_its_order():
    prepared = prepare([
        {"wa_id": "16505551000", "parameters": ["10%"]},
        "16505551001",
        {"wa_id": "+1 650 555 1000", "parameters": ["again"]},
        {"wa_id": "nope"},
        {"wa_id": "16505551002", "parameters": "not a list"},
        {"wa_id": "16505551003", "parameters": [{"nested": 1}]},
        {"wa_id": "16505551004", "parameters": [5, 2.5]},
    ], max_recipients=10)
    assert prepared.recipients == [Recipient("16505551000", ("10%",)), Recipient("16505551001"), Recipient("16505551004", ("5", "2.5"))]
    assert prepared.skipped == {"duplicate": 1, "invalid_number": 3}
    assert prepared.targeted == 7


def test_a_list_that_is_not_one_or_too_long_is_refused_whole():
    with pytest.raises(BadRecipients):
        prepare("16505551000", max_recipients=10)
    with pytest.raises(BadRecipients):
        prepare(["16505551000"] * 11, max_recipients=10)


def test_a_csv_names_its_number_column_and_the_rest_are_parameters_in_order():
    entries = entries_from_csv("\ufeffName,Phone,Discount\nAna,+66 81 234 5678,10%\n\n,16505551000,\n")
    assert entries == [{"wa_id": "+66 81 234 5678", "parameters": ["Ana", "10%"]}, {"wa_id": "16505551000", "parameters": ["", ""]}]
    with pytest.raises(BadRecipients):
        entries_from_csv("name,discount\nAna,10%\n")
    with pytest.raises(BadRecipients):
        entries_from_csv("")


def test_policy_refusals_are_skip_reasons_under_their_own_code():
    assert skip_reason("opted_out") == "opted_out"
    assert skip_reason("no_consent") == "no_consent"  # a refusal the policy may add: no change needed


def test_pages_cover_the_list():
    assert [pages(n, 100) for n in (0, 1, 100, 101, 100_000)] == [0, 1, 1, 2, 1000]


@pytest.mark.parametrize("action, state, expected", [
    ("pause", CampaignState.RUNNING, CampaignState.PAUSED),
    ("pause", CampaignState.SCHEDULED, CampaignState.PAUSED),
    ("pause", CampaignState.WAITING_FOR_MESSAGING_LIMIT, CampaignState.PAUSED),
    ("pause", CampaignState.PAUSED, None),
    ("pause", CampaignState.FINISHED, None),
    ("resume", CampaignState.PAUSED, CampaignState.RUNNING),
    ("resume", CampaignState.RUNNING, None),
    ("resume", CampaignState.CANCELLED, None),
    ("cancel", CampaignState.PAUSED, CampaignState.CANCELLED),
    ("cancel", CampaignState.RUNNING, CampaignState.CANCELLED),
    ("cancel", CampaignState.FINISHED, None),
    ("cancel", CampaignState.CANCELLED, None),
])
def test_which_moves_a_campaign_allows(action, state, expected):
    assert may_move(action, state) == expected


@pytest.mark.parametrize("value, limit", [
    ("TIER_250", 250), ("TIER_2K", 2_000), ("TIER_10K", 10_000), ("TIER_100K", 100_000), ("TIER_UNLIMITED", UNLIMITED),
    ("2000", 2_000), (100_000, 100_000), (-1, UNLIMITED), ("-1", UNLIMITED),
    ("TIER_NOT_SET", None), (0, None), (True, None), (None, None), ("", None),
])
def test_the_limit_as_meta_writes_it(value, limit):
    assert limit_of(value) == limit


def test_room_in_the_rolling_window_and_when_it_frees_up():
    now = 1_000 * HOUR_S + 1800  # half past an hour
    reached = {980: 100, 990: 100, 999: 40, 1000: 10, 970: 500}  # hour 970 is out of the window
    room = room_for(0, 250, reached, now)
    assert (room.reached, room.left, room.free_at) == (250, 0, None)  # full, but nothing more asked
    fits = room_for(0, 2_000, reached, now)
    assert fits.free_at is None and fits.left == 1_750
    # 50 more need the oldest hour in the window (980) to roll out: at its hour + 24 h.
    waits = room_for(50, 250, reached, now)
    assert waits.free_at == (980 + 24) * HOUR_S
    # 150 more need 980 and 990 gone.
    assert room_for(150, 250, reached, now).free_at == (990 + 24) * HOUR_S
    assert room_for(10_000, UNLIMITED, reached, now).free_at is None


def test_a_full_window_never_lets_one_more_through():
    now = 500 * HOUR_S
    assert room_for(1, 250, {500: 250}, now).free_at == (500 + 24) * HOUR_S
    assert room_for(1, 250, {500: 249}, now).free_at is None


def _interpreted(field: str, value: dict):
    from coexist.domain.interpret import interpret
    from coexist.meta.models import WebhookEnvelope

    document = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "time": 1764000000,
                                                                    "changes": [{"field": field, "value": value}]}]}
    return interpret(WebhookEnvelope.model_validate(document))


def test_the_messaging_limit_and_quality_are_read_from_metas_webhooks():
    """Shapes from Meta's webhook reference pages (May 2026), not from captured webhooks."""
    found = _interpreted("phone_number_quality_update", {
        "display_phone_number": "15550783881", "event": "UPGRADE", "old_limit": "TIER_2K", "current_limit": "TIER_10K",
        "max_daily_conversations_per_business": "10000"})
    [update] = found.messaging_limits
    assert (update.portfolio, update.time, update.limit, update.quality) == ("102290129340398", 1764000000, 10_000, None)
    assert found.unhandled == []

    [flagged] = _interpreted("phone_number_quality_update", {"display_phone_number": "15550783881", "event": "FLAGGED",
                                                              "current_limit": "TIER_250"}).messaging_limits
    assert (flagged.limit, flagged.quality) == (250, "FLAGGED")

    [capability] = _interpreted("business_capability_update", {"max_daily_conversation_per_phone": 2000,
                                                               "max_daily_conversations_per_business": -1}).messaging_limits
    assert capability.limit == UNLIMITED

    assert _interpreted("business_capability_update", {"max_phone_numbers_per_waba": 2}).messaging_limits == []
