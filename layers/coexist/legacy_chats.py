"""Re-key the chats of a deployment that keyed them by phone number (`<phone_number_id>_<wa_id>`),
once, to the customers' opaque ids (docs/DEPLOY.md, "Chats keyed by phone number").

    python -m coexist.legacy_chats --stage prod --old-chats <table> [--old-contacts <table>] [--apply]

The old Chats (and Contacts) items are read from the tables named, kept under other names or
restored from their export; the stage's own tables receive them. For each old chat: the customer its
phone number names (found, or created as any webhook would), the chat under the customer's id (its
times, mode and people; never a running conversation), its messages moved from the old chat id to
the new one, the contact's names. Without `--apply` nothing is written: it counts what it would do.
Every write is conditional, so running it again (or after an interruption) changes nothing twice.
Consent kept by the old version (an opt-out on the contact) is not carried over: marketing then
needs a new grant (docs/ARCHITECTURE.md rule 12, the safe side).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

from coexist.domain.identity import Identifiers, normalize_phone
from coexist.domain.records import AppContactChange, ContactProfile
from coexist.store.chats import ChatRepository
from coexist.store.contacts import ContactStore
from coexist.store.customers import CustomerStore
from coexist.store.messages import MessageStore

LEGACY_SEPARATOR = "_"


@dataclass
class Stores:
    """The stage's tables that receive the chats."""

    customers: CustomerStore
    chats: ChatRepository
    messages: MessageStore
    contacts: ContactStore



@dataclass
class Report:
    chats: int = 0  # old chats read
    customers_created: int = 0
    chats_written: int = 0  # new chats (0 for a chat already re-keyed)
    messages_moved: int = 0
    contacts_written: int = 0
    skipped: int = 0  # old items without a number and a phone number


def legacy_chat_id(phone_number_id: str, wa_id: str) -> str:
    return f"{phone_number_id}{LEGACY_SEPARATOR}{wa_id}"


def rekey(old_chats, inbox: Stores, old_contacts=None, apply: bool = False) -> Report:
    """Re-key every chat of `old_chats` (a table keyed by phone_number_id and wa_id) into `inbox`."""
    report = Report()
    contacts = {}
    if old_contacts is not None:
        contacts = {(c["phone_number_id"], c["wa_id"]): c for c in _scan(old_contacts)}
    for old in _scan(old_chats):
        report.chats += 1
        number, wa_id = old.get("phone_number_id"), normalize_phone(str(old.get("wa_id") or ""))
        if not number or not wa_id:
            report.skipped += 1
            continue
        old_id = legacy_chat_id(number, str(old["wa_id"]))
        if not apply:
            found = inbox.customers.find_one(Identifiers(number, wa_id=wa_id))
            report.customers_created += found is None
            report.chats_written += found is None or inbox.chats.get(found.customer_id) is None
            report.messages_moved += inbox.messages.count_in_chat(old_id)
            report.contacts_written += (number, old["wa_id"]) in contacts
            continue
        resolved = inbox.customers.resolve(Identifiers(number, wa_id=wa_id))
        customer = resolved.customer
        report.customers_created += resolved.created
        report.chats_written += inbox.chats.import_legacy(customer.customer_id, number, old)
        inbox.chats.record_identity(customer.customer_id, customer, existing_only=True)
        report.messages_moved += inbox.messages.move_chat(old_id, customer.customer_id)
        contact = contacts.get((number, old["wa_id"]))
        if contact is not None:
            _import_contact(inbox, number, wa_id, customer.customer_id, contact)
            report.contacts_written += 1
    return report


def _import_contact(inbox: Stores, number: str, wa_id: str, customer_id: str, contact: dict) -> None:
    """The old contact's names, each written only if newer than what the new contact holds."""
    if contact.get("profile_seen_at") is not None:
        inbox.contacts.record_profile(ContactProfile(
            phone_number_id=number, wa_id=wa_id, profile_name=contact.get("profile_name"), user_id=contact.get("user_id"),
            seen_at=int(contact["profile_seen_at"]), chat_id=customer_id))
    if contact.get("app_contact_at") is not None:
        inbox.contacts.record_app_contact(AppContactChange(
            phone_number_id=number, wa_id=wa_id, action=contact.get("app_contact_action") or "add",
            full_name=contact.get("app_full_name"), first_name=contact.get("app_first_name"),
            timestamp=int(contact["app_contact_at"]), chat_id=customer_id))


def _scan(table):
    """Every item: an operator's one-shot over a whole table, never a request path."""
    kwargs: dict = {}
    while True:
        page = table.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coexist.legacy_chats", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True, help="the stage whose tables receive the chats (coexist-<stage>-…)")
    parser.add_argument("--old-chats", required=True, help="the table holding the chats keyed by phone number")
    parser.add_argument("--old-contacts", help="the table holding the contacts keyed by phone number")
    parser.add_argument("--apply", action="store_true", help="write (without it: count what would be written)")
    args = parser.parse_args(argv)
    from coexist import aws, wiring  # noqa: I001 - at run time only: the command's own wiring

    stores = wiring.legacy_chat_stores(args.stage)
    report = rekey(aws.table(args.old_chats), stores, aws.table(args.old_contacts) if args.old_contacts else None, apply=args.apply)
    print(json.dumps({"applied": args.apply, **asdict(report)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
