"""The consent rules: purposes and what a send needs, changes and their typed evidence."""

from __future__ import annotations

import hashlib

import pytest

from coexist.domain import consent
from coexist.domain.consent import (
    AgentEvidence, ImportEvidence, InvalidConsent, KeywordEvidence, PlatformEvidence, State,
)

NUMBER, CUSTOMER = "106540352242922", "c" + "a" * 24


@pytest.mark.parametrize(
    "purpose, state, code",
    [
        ("marketing", "granted", None),
        ("marketing", "unknown", "no_consent"),
        ("marketing", "withdrawn", "opted_out"),
        ("reminders", "granted", None),
        ("reminders", "unknown", "no_consent"),
        ("reminders", "withdrawn", "opted_out"),
        ("utility", "unknown", None),  # today's rule: only an explicit withdrawal refuses
        ("utility", "granted", None),
        ("utility", "withdrawn", "opted_out"),
    ],
)
def test_what_each_purpose_needs(purpose, state, code):
    refusal = consent.refusal(purpose, state)
    assert (refusal.code if refusal else None) == code
    if refusal:
        assert refusal.purpose == purpose and purpose in refusal.message


@pytest.mark.parametrize(
    "category, named, purposes",
    [
        ("MARKETING", None, ("marketing",)),
        ("marketing", None, ("marketing",)),
        ("UTILITY", None, ("utility",)),
        ("UTILITY", "reminders", ("utility", "reminders")),
        ("MARKETING", "utility", ("marketing", "utility")),  # the category's purpose is never dropped
        ("AUTHENTICATION", None, ()),  # a code the customer asked for
        (None, None, ()),
        (None, "reminders", ("reminders",)),
    ],
)
def test_a_sends_purposes_come_from_its_template_category_and_the_purpose_it_names(category, named, purposes):
    assert consent.purposes_of_send(category, named) == purposes


def test_every_purpose_of_a_send_must_pass():
    states = {"utility": "granted", "reminders": "withdrawn"}
    assert consent.check_send("UTILITY", "reminders", states).code == "opted_out"
    assert consent.check_send("UTILITY", None, states) is None


@pytest.mark.parametrize(
    "evidence",
    [
        KeywordEvidence("wamid.1", consent.text_sha256("STOP"), "en"),
        AgentEvidence("ana", "asked on the phone"),
        AgentEvidence("ana"),
        ImportEvidence("consents.csv", "ab" * 32, 7, "admin", "paper form"),
        PlatformEvidence(131050, "out.1"),
    ],
)
def test_evidence_round_trips_through_its_stored_form(evidence):
    stored = consent.evidence_to_dict(evidence)
    assert stored["kind"] == evidence.kind
    assert consent.evidence_from_dict(stored) == evidence


def test_keyword_evidence_holds_a_hash_of_the_text_never_the_text():
    evidence = KeywordEvidence("wamid.1", consent.text_sha256("Stop please, Dr Smith"), "en")
    stored = consent.evidence_to_dict(evidence)
    assert "Stop please" not in repr(stored)
    assert stored["text_sha256"] == hashlib.sha256("Stop please, Dr Smith".encode()).hexdigest()
    assert consent.text_sha256("STOP") != consent.text_sha256("stop")


def test_the_same_evidence_is_the_same_change_and_each_agent_decision_its_own():
    keyword = KeywordEvidence("wamid.1", consent.text_sha256("STOP"), "en")
    first = consent.change(NUMBER, CUSTOMER, "marketing", State.WITHDRAWN, 100, keyword)
    again = consent.change(NUMBER, CUSTOMER, "marketing", State.WITHDRAWN, 105, keyword)
    assert first.change_id == again.change_id
    row = ImportEvidence("a.csv", "cd" * 32, 2, "admin")
    assert consent.change(NUMBER, CUSTOMER, "marketing", State.GRANTED, 1, row).change_id != \
        consent.change(NUMBER, CUSTOMER, "marketing", State.GRANTED, 1, ImportEvidence("a.csv", "cd" * 32, 3, "admin")).change_id
    agent = AgentEvidence("ana")
    assert consent.change(NUMBER, CUSTOMER, "marketing", State.GRANTED, 1, agent).change_id != \
        consent.change(NUMBER, CUSTOMER, "marketing", State.GRANTED, 1, agent).change_id


def test_platform_opt_out_withdraws_marketing_with_metas_code():
    change = consent.platform_opt_out(NUMBER, CUSTOMER, 131050, "out.1", 100)
    assert (change.purpose, change.state, change.evidence) == ("marketing", State.WITHDRAWN, PlatformEvidence(131050, "out.1"))


@pytest.mark.parametrize(
    "parse, value, field",
    [
        (consent.parse_purpose, "newsletters", "purpose"),
        (consent.parse_purpose, None, "purpose"),
        (consent.parse_purpose, 3, "purpose"),
        (consent.parse_state, "unknown", "state"),  # a change never sets unknown
        (consent.parse_state, "GRANTED", "state"),
        (consent.parse_state, None, "state"),
        (consent.parse_note, "x" * 501, "note"),
        (consent.parse_note, "bell\x07", "note"),
        (consent.parse_note, 12, "note"),
    ],
)
def test_bad_input_is_a_typed_error_naming_the_field(parse, value, field):
    with pytest.raises(InvalidConsent) as raised:
        parse(value)
    assert raised.value.field == field


def test_a_change_cannot_set_unknown_or_name_an_unknown_purpose():
    with pytest.raises(InvalidConsent):
        consent.change(NUMBER, CUSTOMER, "marketing", State.UNKNOWN, 1, AgentEvidence("ana"))
    with pytest.raises(InvalidConsent):
        consent.change(NUMBER, CUSTOMER, "newsletters", State.GRANTED, 1, AgentEvidence("ana"))
