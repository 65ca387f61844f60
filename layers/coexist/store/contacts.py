"""Contacts: the customer's WhatsApp profile, the business's own address-book card, and (beside
them, `store/consent.py`) the consent ledger. Keyed by the business number and the customer (its
opaque id, which is its chat id), so consent and names follow the customer whichever identifier it
last wrote with."""

from __future__ import annotations

from coexist.domain.records import AppContactChange, ContactProfile
from coexist.store.conditional import update_if
from coexist.store.consent import ConsentLedger
from coexist.store.memo import BoundedMemo
from coexist.store.queries import batch_get

# How long a profile this process wrote stands for the same profile seen again: within it, a
# customer's next messages carrying the same name do not write it again. The stored time then lags
# the newest message by up to this much, and a name changed and changed back within it can be
# left showing the name in between when that message arrives late (until the customer's next message
# that is written). A late, older name alone still changes nothing.
PROFILE_RESTATED_S = 3600


class ContactStore:
    def __init__(self, table, consent: ConsentLedger | None = None):
        self.table = table
        self.consent = consent or ConsentLedger(table)
        # The profile this process last wrote per contact (the stored one is it or newer): what a
        # write would not change is not sent on every message.
        self._profile_written = BoundedMemo()

    def record_profile(self, profile: ContactProfile) -> None:
        """The newest profile seen wins; a late webhook with an older name changes nothing.

        Not written when this process wrote it less than `PROFILE_RESTATED_S` before with the same
        name and user id, nor when it wrote a newer one (the write would be refused)."""
        key = (profile.phone_number_id, profile.chat_id)
        written = self._profile_written.get(key)
        if written is not None and _stands_for(written, profile):
            return
        if self._write_profile(profile):
            self._profile_written.put(key, profile)

    def _write_profile(self, profile: ContactProfile) -> bool:
        values = {":t": profile.seen_at}
        sets = ["profile_seen_at = :t"]
        if profile.profile_name is not None:
            sets.append("profile_name = :name")
            values[":name"] = profile.profile_name
        if profile.user_id is not None:
            sets.append("user_id = :uid")
            values[":uid"] = profile.user_id
        return update_if(
            self.table,
            Key={"phone_number_id": profile.phone_number_id, "customer_id": profile.chat_id},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_not_exists(profile_seen_at) OR profile_seen_at <= :t",
            ExpressionAttributeValues=values,
        )

    def record_app_contact(self, change: AppContactChange) -> None:
        """An address-book add (which also means edit) or remove from the phone app, newest wins."""
        key = {"phone_number_id": change.phone_number_id, "customer_id": change.chat_id}
        condition = "attribute_not_exists(app_contact_at) OR app_contact_at <= :t"
        if change.action == "remove":
            update_if(
                self.table,
                Key=key,
                UpdateExpression="SET app_contact_at = :t, app_contact_action = :a REMOVE app_full_name, app_first_name",
                ConditionExpression=condition,
                ExpressionAttributeValues={":t": change.timestamp, ":a": "remove"},
            )
            return
        update_if(
            self.table,
            Key=key,
            UpdateExpression="SET app_contact_at = :t, app_contact_action = :a, app_full_name = :full, app_first_name = :first",
            ConditionExpression=condition,
            ExpressionAttributeValues={":t": change.timestamp, ":a": "add", ":full": change.full_name, ":first": change.first_name},
        )

    def erase(self, phone_number_id: str, customer_id: str) -> None:
        """A customer's erasure: the contact, its names, its consent and the ledger's evidence, go."""
        self._profile_written.put((phone_number_id, customer_id), None)
        self.consent.erase(phone_number_id, customer_id)
        self.table.delete_item(Key={"phone_number_id": phone_number_id, "customer_id": customer_id})

    def get(self, phone_number_id: str, customer_id: str) -> dict | None:
        return self.table.get_item(Key={"phone_number_id": phone_number_id, "customer_id": customer_id}).get("Item")

    def get_many(self, phone_number_id: str, customer_ids: list[str]) -> dict[str, dict]:
        """Contacts for a page of chats in one or two round trips."""
        keys = [{"phone_number_id": phone_number_id, "customer_id": c} for c in dict.fromkeys(customer_ids)]
        return {item["customer_id"]: item for item in batch_get(self.table, keys)}

    def absorb(self, phone_number_id: str, survivor_id: str, loser_id: str) -> None:
        """Two customers merged: the names survive each by its own time; consent as the ledger merges it."""
        self.consent.absorb(phone_number_id, survivor_id, loser_id)
        self._profile_written.put((phone_number_id, survivor_id), None)  # the loser's name may move onto it
        loser = self.get(phone_number_id, loser_id)
        if not loser:
            return
        key = {"phone_number_id": phone_number_id, "customer_id": survivor_id}
        groups = (
            ("profile_seen_at", ("profile_name", "user_id")),
            ("app_contact_at", ("app_contact_action", "app_full_name", "app_first_name")),
        )
        for at, names in groups:
            if at not in loser:
                continue
            present = [n for n in names if n in loser]
            update_if(
                self.table, Key=key,
                UpdateExpression="SET " + ", ".join([f"#{n} = :{n}" for n in (at, *present)]),
                ConditionExpression=f"attribute_not_exists(#{at}) OR #{at} < :{at}",
                ExpressionAttributeNames={f"#{n}": n for n in (at, *present)},
                ExpressionAttributeValues={f":{n}": loser[n] for n in (at, *present)},
            )


def _stands_for(written: ContactProfile, seen: ContactProfile) -> bool:
    """Whether the profile written already stands for `seen`: newer (the write would be refused),
    or the same name and user id seen again shortly after."""
    if seen.seen_at < written.seen_at:
        return True
    return (seen.profile_name, seen.user_id) == (written.profile_name, written.user_id) \
        and seen.seen_at - written.seen_at < PROFILE_RESTATED_S


def display_name(contact: dict | None) -> str | None:
    """The name the business saved on its phone, else the customer's WhatsApp profile name."""
    if not contact:
        return None
    return contact.get("app_full_name") or contact.get("app_first_name") or contact.get("profile_name")
