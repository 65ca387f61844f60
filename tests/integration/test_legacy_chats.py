"""Re-keying the chats of a deployment that keyed them by phone number (coexist.legacy_chats), on
the emulated account: the old Chats and Contacts tables as the version before opaque ids wrote them,
its messages in the stage's Messages table under the old chat ids. A dry run writes nothing; the
run gives each customer its opaque chat with its messages, times and names; a second run changes
nothing; a customer who had already written again since keeps its chat."""

from __future__ import annotations

from coexist import wiring
from coexist.legacy_chats import Stores, legacy_chat_id, main, rekey
from coexist.store.messages import position
from tests.integration.helpers import api, chat_of, deliver, messages_of
from tests.integration.test_ingest import text_message

NUMBER, PHONE, OTHER = "106540352242922", "16505551234", "16505550000"
OLD_CHATS, OLD_CONTACTS = "coexist-test-chats-by-phone", "coexist-test-contacts-by-phone"


def old_tables(account):
    for name in (OLD_CHATS, OLD_CONTACTS):
        account.dynamodb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "phone_number_id", "KeyType": "HASH"}, {"AttributeName": "wa_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "phone_number_id", "AttributeType": "S"}, {"AttributeName": "wa_id", "AttributeType": "S"}],
        )
    chats, contacts = account.dynamodb.Table(OLD_CHATS), account.dynamodb.Table(OLD_CONTACTS)
    for wa_id, at in ((PHONE, 1_764_000_000), (OTHER, 1_764_000_500)):
        chats.put_item(Item={
            "phone_number_id": NUMBER, "wa_id": wa_id, "chat_id": legacy_chat_id(NUMBER, wa_id), "mode": "agent",
            "assignee": "ana", "created_at": at - 100, "last_message_at": at, "last_customer_message_at": at,
            "conversation_id": "conv-old", "conversation_state": "live", "workflow_token": "token-of-an-old-execution",
        })
        messages = wiring.inbox().messages.table
        messages.put_item(Item={
            "id": f"wamid.OLD-{wa_id}", "chat_id": legacy_chat_id(NUMBER, wa_id), "position": position(at, f"wamid.OLD-{wa_id}"),
            "phone_number_id": NUMBER, "wa_id": wa_id, "direction": "inbound", "source": "customer", "type": "text",
            "text": "Is my appointment still on?", "content": {"body": "Is my appointment still on?"}, "timestamp": at,
        })
    contacts.put_item(Item={"phone_number_id": NUMBER, "wa_id": PHONE, "profile_name": "Sheena Nelson", "profile_seen_at": 1_764_000_000,
                            "app_full_name": "Sheena (dentist)", "app_contact_at": 1_764_000_010, "app_contact_action": "add",
                            "marketing_opted_out": True})
    return chats, contacts


def stores() -> Stores:
    return wiring.legacy_chat_stores("test")


def test_a_dry_run_counts_and_writes_nothing_then_the_run_rekeys_and_a_second_run_changes_nothing(aws):  # noqa: F811
    chats, contacts = old_tables(aws)
    # Since the upgrade, the second customer wrote again: it has an opaque chat already.
    deliver(aws, text_message("wamid.NEW-OTHER", 1_764_001_000, body="Hello again", sender=OTHER))
    other = chat_of(NUMBER, OTHER)

    dry = rekey(chats, stores(), contacts)
    assert (dry.chats, dry.customers_created, dry.chats_written, dry.messages_moved, dry.contacts_written) == (2, 1, 1, 2, 1)
    assert wiring.inbox().customers.find_one(wiring_identifiers(PHONE)) is None  # nothing written
    assert wiring.inbox().messages.count_in_chat(legacy_chat_id(NUMBER, PHONE)) == 1

    done = rekey(chats, stores(), contacts, apply=True)
    assert (done.customers_created, done.chats_written, done.messages_moved, done.contacts_written) == (1, 1, 2, 1)
    chat = chat_of(NUMBER, PHONE)
    code, view = api(f"/api/chats/{chat}")
    assert code == 200 and view["chat_id"] == chat and view["wa_id"] == PHONE
    assert (view["mode"], view["assignee"], view["contact_name"]) == ("agent", "ana", "Sheena (dentist)")
    assert view["last_customer_message_at"] == "2025-11-24T16:00:00Z"
    assert view["conversation_state"] == "ended" and "workflow_token" not in view  # the old execution is not carried
    assert [m["id"] for m in messages_of(chat)] == [f"wamid.OLD-{PHONE}"]
    # The customer who wrote since keeps its chat, which now holds its older messages too.
    assert chat_of(NUMBER, OTHER) == other
    assert [m["id"] for m in messages_of(other)] == [f"wamid.OLD-{OTHER}", "wamid.NEW-OTHER"]
    assert api(f"/api/chats/{other}")[1]["last_message_at"] == "2025-11-24T16:16:40Z"  # its own, newer time stands
    consent = api(f"/api/contacts/{chat}/consent")[1]["purposes"]["marketing"]
    assert consent["state"] == "unknown"  # the old opt-out is not carried: marketing needs a new grant

    before = wiring.inbox().chats.table.scan()["Items"]
    again = rekey(chats, stores(), contacts, apply=True)
    assert (again.customers_created, again.chats_written, again.messages_moved) == (0, 0, 0)
    assert wiring.inbox().chats.table.scan()["Items"] == before


def test_the_command_is_a_dry_run_unless_told_to_apply(aws, capsys):
    old_tables(aws)
    assert main(["--stage", "test", "--old-chats", OLD_CHATS, "--old-contacts", OLD_CONTACTS]) == 0
    assert '"applied": false' in capsys.readouterr().out
    assert wiring.inbox().customers.find_one(wiring_identifiers(PHONE)) is None
    assert main(["--stage", "test", "--old-chats", OLD_CHATS, "--apply"]) == 0
    assert '"chats_written": 2' in capsys.readouterr().out
    assert [m["id"] for m in messages_of(chat_of(NUMBER, PHONE))] == [f"wamid.OLD-{PHONE}"]


def wiring_identifiers(wa_id: str):
    from coexist.domain.identity import Identifiers

    return Identifiers(NUMBER, wa_id=wa_id)
