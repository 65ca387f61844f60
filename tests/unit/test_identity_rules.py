"""How identifiers resolve to one customer: a BSUID-only customer, linking a phone number to it,
a merge of two records of one person, and a phone number that moved to someone else."""

from __future__ import annotations

import pytest

from coexist.domain.identity import (
    Identifiers,
    Kind,
    Known,
    index_key,
    is_customer_id,
    kind_of,
    resolve,
)

NUMBER = "106540352242922"
PHONE = "16505551234"
BSUID = "US.13491208655302741918"  # Meta's example BSUID
PARENT = "US.ENT.11815799212886844830"  # Meta's example parent BSUID
PHONE_KEY, BSUID_KEY, PARENT_KEY = index_key(Kind.PHONE, PHONE), index_key(Kind.BSUID, BSUID), index_key(Kind.PARENT, PARENT)


@pytest.mark.parametrize(
    ("value", "kind"),
    [(PHONE, Kind.PHONE), ("+1 (650) 555-1234", Kind.PHONE), (BSUID, Kind.BSUID), (PARENT, Kind.PARENT),
     ("us.123", None), ("", None), ("hello", None)],
)
def test_an_identifier_is_recognised_by_its_shape(value, kind):
    assert kind_of(value) == kind


def test_bare_values_of_any_kind_become_identifiers_and_a_message_is_completed_by_its_contact():
    ids = Identifiers.of(NUMBER, "+1 650 555 1234", None, BSUID)
    assert (ids.wa_id, ids.user_id, ids.parent_user_id) == (PHONE, BSUID, None)
    completed = Identifiers.of(NUMBER, BSUID).combined(Identifiers(NUMBER, wa_id=PHONE, parent_user_id=PARENT, username="ana"))
    assert (completed.wa_id, completed.user_id, completed.parent_user_id, completed.username) == (PHONE, BSUID, PARENT, "ana")
    assert completed.keys() == [BSUID_KEY, PARENT_KEY, PHONE_KEY]
    assert Identifiers(NUMBER, username="only-a-name").empty


def test_nobody_known_is_a_new_customer_claiming_every_identifier():
    plan = resolve(Identifiers(NUMBER, user_id=BSUID), {})
    assert (plan.customer_id, plan.claim, plan.merge) == (None, (BSUID_KEY,), ())


def test_a_phone_number_arriving_beside_a_known_bsuid_is_linked_to_that_customer():
    plan = resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID), {BSUID_KEY: Known("ca", 10, BSUID)})
    assert (plan.customer_id, plan.claim, plan.repoint, plan.merge) == ("ca", (PHONE_KEY,), (), ())


def test_a_customer_known_by_phone_and_another_by_bsuid_are_merged_into_the_older():
    found = {PHONE_KEY: Known("cphone", 10), BSUID_KEY: Known("cbsuid", 20, BSUID)}
    plan = resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID), found)
    assert (plan.customer_id, plan.claim, plan.merge) == ("cphone", (), ("cbsuid",))
    # The same decision whatever order the records were found in: racing merges agree.
    assert resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID), dict(reversed(found.items()))) == plan


def test_a_phone_number_whose_customer_has_another_bsuid_moved_and_is_never_merged():
    owner = Known("cold", 10, "US.999")
    to_known = resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID), {PHONE_KEY: owner, BSUID_KEY: Known("cnew", 20, BSUID)})
    assert (to_known.customer_id, to_known.repoint, to_known.merge) == ("cnew", (PHONE_KEY,), ())
    to_new = resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID), {PHONE_KEY: owner})
    assert (to_new.customer_id, to_new.claim, to_new.repoint) == (None, (BSUID_KEY,), (PHONE_KEY,))


def test_a_phone_number_alone_finds_its_customer():
    assert resolve(Identifiers(NUMBER, wa_id=PHONE), {PHONE_KEY: Known("ca", 1, BSUID)}).customer_id == "ca"


def test_customer_ids_are_letters_only():
    assert is_customer_id("c" + "q" * 24)
    assert not is_customer_id(f"{NUMBER}_{PHONE}") and not is_customer_id("c" + "1" * 24)


# --- what Meta's BSUID examples mean (tests/fixtures/meta/bsuid) ---------------------------------------
def bsuid_example(name: str):
    import json
    from pathlib import Path

    from coexist.domain.interpret import interpret
    from coexist.meta.models import WebhookEnvelope

    path = Path(__file__).resolve().parents[1] / "fixtures" / "meta" / "bsuid" / name
    return interpret(WebhookEnvelope.model_validate(json.loads(path.read_text())))


def test_a_username_user_without_a_phone_number_is_a_customer_message_named_by_bsuid():
    found = bsuid_example("messages_username_no_phone.json")
    [message] = found.messages
    assert message.wa_id is None and not found.unhandled
    assert message.identifiers == Identifiers(NUMBER, user_id=BSUID, username="sheena.n")


def test_a_message_with_both_identifiers_names_the_customer_by_both():
    [message] = bsuid_example("messages_both_identifiers.json").messages
    assert (message.identifiers.wa_id, message.identifiers.user_id) == (PHONE, BSUID)


def test_a_number_change_notice_is_filed_under_the_new_number_and_announces_the_change():
    found = bsuid_example("system_user_changed_number.json")
    [change] = found.identity_changes
    assert (change.kind, change.before.wa_id, change.new_wa_id) == ("user_changed_number", PHONE, "12195555358")
    [notice] = found.messages
    assert notice.type == "system" and notice.identifiers.wa_id == "12195555358"
    assert all(a.last_customer_message_at is None for a in found.chats.values())  # no window from a notice


def test_a_bsuid_change_notice_carries_the_new_bsuid():
    [change] = bsuid_example("system_user_changed_user_id.json").identity_changes
    assert (change.kind, change.before.user_id, change.new_user_id) == ("user_changed_user_id", BSUID, "US.88812345678901234567")
    assert change.after.user_id == "US.88812345678901234567"


def test_a_status_of_a_message_sent_to_a_bsuid_names_the_customer_by_it():
    [status] = bsuid_example("status_sent_to_bsuid.json").statuses
    assert status.wa_id is None and status.identifiers == Identifiers(NUMBER, user_id=BSUID)
