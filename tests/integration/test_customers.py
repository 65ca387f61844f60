"""The customers table on the emulated account: one customer however many webhooks race to name it,
identifiers linked as they appear, merges re-pointing every identifier, number changes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from coexist import wiring
from coexist.domain.identity import USER_CHANGED_NUMBER, IdentityChange, Identifiers, Kind, is_customer_id

NUMBER = "106540352242922"
PHONE, NEW_PHONE = "16505551234", "16505559999"
BSUID = "US.13491208655302741918"


def test_a_bsuid_only_customer_gets_an_opaque_id_and_a_later_phone_number_links_to_it(aws):
    customers = wiring.inbox().customers
    first = customers.resolve(Identifiers(NUMBER, user_id=BSUID, username="ana.b"))
    assert first.created and is_customer_id(first.customer.customer_id) and first.customer.wa_id is None
    linked = customers.resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID))
    assert not linked.created and linked.customer.customer_id == first.customer.customer_id
    assert (linked.customer.wa_id, linked.customer.user_id, linked.customer.username) == (PHONE, BSUID, "ana.b")
    assert linked.customer.identity_version > first.customer.identity_version
    assert customers.find(NUMBER, Kind.PHONE, PHONE).customer_id == first.customer.customer_id
    # A replay changes nothing.
    again = customers.resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID))
    assert again.customer.identity_version == linked.customer.identity_version


def test_webhooks_racing_to_name_a_new_customer_end_with_one(aws):
    customers = wiring.inbox().customers
    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = list(pool.map(lambda _: customers.resolve(Identifiers(NUMBER, wa_id=PHONE)).customer.customer_id, range(12)))
    assert len(set(ids)) == 1


def test_two_records_of_one_person_are_found_and_merged_into_the_older(aws):
    customers = wiring.inbox().customers
    customers.clock = lambda: 1_000
    by_phone = customers.resolve(Identifiers(NUMBER, wa_id=PHONE)).customer
    customers.clock = lambda: 2_000
    by_bsuid = customers.resolve(Identifiers(NUMBER, user_id=BSUID)).customer
    both = customers.resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID))
    assert both.customer.customer_id == by_phone.customer_id and both.merge == (by_bsuid.customer_id,)
    customers.point_keys_at(NUMBER, by_bsuid.customer_id, by_phone.customer_id)
    assert customers.mark_merged(NUMBER, by_bsuid.customer_id, by_phone.customer_id)
    assert not customers.mark_merged(NUMBER, by_bsuid.customer_id, by_phone.customer_id)  # recorded once
    assert customers.find(NUMBER, Kind.BSUID, BSUID).customer_id == by_phone.customer_id
    assert customers.get(NUMBER, by_bsuid.customer_id).customer_id == by_phone.customer_id  # old ids lead on
    assert customers.resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID)).merge == ()


def test_a_number_change_moves_the_customer_and_frees_the_old_number(aws):
    customers = wiring.inbox().customers
    customer = customers.resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID)).customer
    change = IdentityChange(USER_CHANGED_NUMBER, Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID), NEW_PHONE, None, 1_700, "wamid.SYS")
    assert customers.apply_change(customer.customer_id, change)
    assert not customers.apply_change(customer.customer_id, change)  # a replayed notice
    assert customers.find(NUMBER, Kind.PHONE, NEW_PHONE).customer_id == customer.customer_id
    assert customers.find(NUMBER, Kind.PHONE, PHONE) is None
    assert customers.get(NUMBER, customer.customer_id).wa_id == NEW_PHONE
    # Someone new writing from the old number is someone new.
    assert customers.resolve(Identifiers(NUMBER, wa_id=PHONE)).created


def test_a_merge_interrupted_after_its_identifiers_moved_is_finished_by_the_next_resolution(aws):
    customers = wiring.inbox().customers
    customers.clock = lambda: 1_000
    by_phone = customers.resolve(Identifiers(NUMBER, wa_id=PHONE)).customer
    customers.clock = lambda: 2_000
    by_bsuid = customers.resolve(Identifiers(NUMBER, user_id=BSUID)).customer
    # The first attempt moved the identifiers, then failed before the rest of the merge.
    customers.point_keys_at(NUMBER, by_bsuid.customer_id, by_phone.customer_id)
    retried = customers.resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID))
    assert retried.customer.customer_id == by_phone.customer_id and retried.merge == (by_bsuid.customer_id,)
    assert customers.mark_merged(NUMBER, by_bsuid.customer_id, by_phone.customer_id)
    assert customers.resolve(Identifiers(NUMBER, wa_id=PHONE, user_id=BSUID)).merge == ()  # finished: nothing left
    assert customers.resolve(Identifiers(NUMBER, user_id=BSUID)).merge == ()
