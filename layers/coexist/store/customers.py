"""The customers table: each customer of a business number, and its identifiers pointing at it.

Two kinds of item under the business number (`phone_number_id`):
- `customer#<customer id>`: the customer, its current identifiers (`wa_id`, `user_id`,
  `parent_user_id`, `username`), `keys` (every identifier item pointing here), `identity_version`
  (raised on every change, so the chat's copy only moves forward), the identity changes it went
  through, and `merged_into` / `merged_from` once two customers turned out to be one person
  (`merges_done`: the merges into it that finished; one in `merged_from` only is finished by the
  next resolution);
- `wa#<phone>`, `bsuid#<BSUID>`, `parent#<parent BSUID>`: `customer_id`, the customer it names.

Every identifier is claimed with a conditional put, so two webhooks naming a new customer at once
end with one customer; the loser of a race reads again and joins it (or merges into it).
"""

from __future__ import annotations

import secrets
import string
import time
from dataclasses import dataclass

from coexist.domain.identity import (
    USER_CHANGED_NUMBER,
    Customer,
    IdentityChange,
    Identifiers,
    Kind,
    Known,
    index_key,
    resolve,
)
from botocore.exceptions import ClientError

from coexist.store.conditional import is_condition_failure, put_if_absent, update_if
from coexist.store.items import from_item_value
from coexist.store.queries import batch_get

CUSTOMER_PREFIX = "customer#"
MAX_ATTEMPTS = 6  # rounds of read-then-claim a resolution may lose to racing webhooks
MAX_HOPS = 5  # merged_into links followed from an old customer id to the one that holds it now
_FIELDS = ("wa_id", "user_id", "parent_user_id", "username")


def new_customer_id() -> str:
    """24 random lowercase letters (113 bits): see `coexist.domain.identity.CUSTOMER_ID`."""
    return "c" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(24))


def customer_from_item(item: dict) -> Customer:
    values = from_item_value(item)
    return Customer(
        phone_number_id=values["phone_number_id"],
        customer_id=values["customer_id"],
        created_at=int(values.get("created_at") or 0),
        wa_id=values.get("wa_id"),
        user_id=values.get("user_id"),
        parent_user_id=values.get("parent_user_id"),
        username=values.get("username"),
        identity_version=int(values.get("identity_version") or 0),
        merged_into=values.get("merged_into"),
        keys=frozenset(values.get("keys") or ()),
        change_ids=frozenset(values.get("change_ids") or ()),
        unfinished_merges=frozenset(values.get("merged_from") or ()) - frozenset(values.get("merges_done") or ()),
    )


class IdentityConflict(Exception):
    """Racing webhooks kept changing these identifiers; the record is retried by the queue."""


@dataclass(frozen=True)
class Resolved:
    customer: Customer
    merge: tuple[str, ...] = ()  # other customers found to be this person: the caller folds them in
    created: bool = False


class CustomerStore:
    def __init__(self, table, clock=time.time, new_id=new_customer_id):
        self.table = table
        self.clock = clock
        self.new_id = new_id

    # --- reads ---------------------------------------------------------------------------------
    def get(self, phone_number_id: str, customer_id: str, follow_merges: bool = True) -> Customer | None:
        for _ in range(MAX_HOPS):
            item = self.table.get_item(Key=self._key(phone_number_id, customer_id), ConsistentRead=True).get("Item")
            if item is None:
                return None
            customer = customer_from_item(item)
            if not follow_merges or not customer.merged_into:
                return customer
            customer_id = customer.merged_into
        return None

    def erase(self, phone_number_id: str, customer_id: str) -> int:
        """A customer's erasure: its item and every identifier row still pointing at it (a phone
        number, a BSUID); a row another customer has claimed since stays. Returns rows removed."""
        item = self.table.get_item(Key=self._key(phone_number_id, customer_id), ConsistentRead=True).get("Item")
        removed = 0
        for key in sorted((item or {}).get("keys") or ()):
            try:
                self.table.delete_item(
                    Key={"phone_number_id": phone_number_id, "sk": key},
                    ConditionExpression="customer_id = :c", ExpressionAttributeValues={":c": customer_id},
                )
                removed += 1
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
        if item is not None:
            self.table.delete_item(Key=self._key(phone_number_id, customer_id))
            removed += 1
        return removed

    def find(self, phone_number_id: str, kind: Kind, value: str) -> Customer | None:
        """The customer an identifier names now (a phone number, a BSUID or a parent BSUID)."""
        item = self.table.get_item(Key={"phone_number_id": phone_number_id, "sk": index_key(kind, value)}).get("Item")
        return self.get(phone_number_id, item["customer_id"]) if item else None

    def find_one(self, identifiers: Identifiers) -> Customer | None:
        """The customer the strongest of these identifiers names, without creating anyone."""
        for key in identifiers.keys():
            kind, _, value = key.partition("#")
            found = self.find(identifiers.phone_number_id, Kind(kind), value)
            if found is not None:
                return found
        return None

    # --- resolution -------------------------------------------------------------------------------
    def resolve(self, identifiers: Identifiers) -> Resolved:
        """The one customer these identifiers name, created or linked as needed."""
        number = identifiers.phone_number_id
        keys = identifiers.keys()
        if not keys:
            raise ValueError("a customer needs a phone number, a BSUID or a parent BSUID")
        for _ in range(MAX_ATTEMPTS):
            pointers = {
                item["sk"]: item["customer_id"]
                # Strongly consistent: a claim another webhook just won must be seen on the next round.
                for item in batch_get(self.table, [{"phone_number_id": number, "sk": k} for k in keys], consistent=True)
            }
            customers = {cid: self._known(number, cid) for cid in set(pointers.values())}
            plan = resolve(identifiers, {k: customers[c].known for k, c in pointers.items()})
            customer_id = plan.customer_id or self.new_id()
            if not all(self._claim(number, key, customer_id) for key in plan.claim):
                continue  # another webhook claimed one of them meanwhile: look again
            for key in plan.repoint:
                self._repoint(number, key, customers[pointers[key]], customer_id)
            current = customers.get(customer_id)
            customer = self._update(number, customer_id, identifiers, current)
            # A merge a failure interrupted (its identifiers already point here) is finished now.
            merge = plan.merge + tuple(sorted(customer.unfinished_merges - set(plan.merge)))
            return Resolved(customer, merge, plan.customer_id is None)
        raise IdentityConflict("identifiers kept changing under racing webhooks")

    def _known(self, number: str, customer_id: str) -> Customer:
        """The customer an index item names, following merges; a customer whose record is not
        written yet (its first webhook failed after claiming) reads as a new one."""
        return self.get(number, customer_id) or Customer(number, customer_id, created_at=0)

    def _claim(self, number: str, key: str, customer_id: str) -> bool:
        return put_if_absent(self.table, {"phone_number_id": number, "sk": key, "customer_id": customer_id}, "sk")

    def _repoint(self, number: str, key: str, previous: Customer, customer_id: str) -> None:
        """An identifier moves from `previous` to `customer_id` (a phone number given to someone new)."""
        self.table.put_item(Item={"phone_number_id": number, "sk": key, "customer_id": customer_id})
        kind, _, value = key.partition("#")
        field = {Kind.PHONE.value: "wa_id", Kind.BSUID.value: "user_id", Kind.PARENT.value: "parent_user_id"}[kind]
        update_if(
            self.table, Key=self._key(number, previous.customer_id),
            UpdateExpression="REMOVE #f DELETE #keys :k ADD identity_version :one",
            ConditionExpression="#f = :v",
            ExpressionAttributeNames={"#f": field, "#keys": "keys"},
            ExpressionAttributeValues={":k": {key}, ":v": value, ":one": 1},
        )

    def _update(self, number: str, customer_id: str, identifiers: Identifiers, current: Customer | None) -> Customer:
        """Write what the identifiers tell that the record does not hold yet (nothing if nothing)."""
        if current is not None and current.created_at and not current.differs_from(identifiers):
            return current
        sets = ["customer_id = :id", "created_at = if_not_exists(created_at, :now)"]
        values: dict = {":id": customer_id, ":now": int(self.clock()), ":keys": set(identifiers.keys()), ":one": 1}
        for name in _FIELDS:
            value = getattr(identifiers, name)
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
        item = self.table.update_item(
            Key=self._key(number, customer_id),
            UpdateExpression="SET " + ", ".join(sets) + " ADD #keys :keys, identity_version :one",
            ExpressionAttributeNames={"#keys": "keys"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return customer_from_item(item)

    # --- merges -----------------------------------------------------------------------------------
    def point_keys_at(self, number: str, loser_id: str, survivor_id: str) -> Customer | None:
        """Every identifier of `loser` names `survivor` from now on (step one of a merge)."""
        loser = self.get(number, loser_id, follow_merges=False)
        if loser is None:
            return None
        for key in sorted(loser.keys):
            update_if(
                self.table, Key={"phone_number_id": number, "sk": key},
                UpdateExpression="SET customer_id = :s", ConditionExpression="customer_id = :l",
                ExpressionAttributeValues={":s": survivor_id, ":l": loser_id},
            )
        sets = ["merged_from_at = if_not_exists(merged_from_at, :now)"]
        values: dict = {":now": int(self.clock()), ":from": {loser_id}, ":one": 1}
        for name in _FIELDS:
            value = getattr(loser, name)
            if value is not None:
                sets.append(f"{name} = if_not_exists({name}, :{name})")
                values[f":{name}"] = value
        adds = "ADD merged_from :from, identity_version :one"
        if loser.keys:
            adds += ", #keys :keys"
            values[":keys"] = set(loser.keys)
        kwargs: dict = {
            "Key": self._key(number, survivor_id),
            "UpdateExpression": "SET " + ", ".join(sets) + " " + adds,
            "ExpressionAttributeValues": values,
        }
        if loser.keys:
            kwargs["ExpressionAttributeNames"] = {"#keys": "keys"}
        self.table.update_item(**kwargs)
        return loser

    def mark_merged(self, number: str, loser_id: str, survivor_id: str) -> bool:
        """The last step of a merge, on both records: True for the one call that recorded it."""
        recorded = update_if(
            self.table, Key=self._key(number, loser_id),
            UpdateExpression="SET merged_into = :s, merged_at = :now",
            ConditionExpression="attribute_exists(customer_id) AND attribute_not_exists(merged_into)",
            ExpressionAttributeValues={":s": survivor_id, ":now": int(self.clock())},
        )
        self.table.update_item(Key=self._key(number, survivor_id), UpdateExpression="ADD merges_done :l",
                               ExpressionAttributeValues={":l": {loser_id}})
        return recorded

    # --- identity changes -------------------------------------------------------------------------
    def apply_change(self, customer_id: str, change: IdentityChange) -> bool:
        """A new phone number or BSUID for this customer; the old phone number stops naming it (it
        may be given to someone else), an old BSUID keeps naming it (BSUIDs are not reused).
        A new number comes with a new BSUID (Meta's BSUID page), so the current BSUID is dropped
        (its key stays): the next webhook naming the new number and the new BSUID links them here
        instead of reading as the number given to a stranger. Returns False for a change already
        applied (a replayed webhook)."""
        number = change.before.phone_number_id
        if change.kind == USER_CHANGED_NUMBER:
            new_key, old_key, field, value = (
                index_key(Kind.PHONE, change.new_wa_id or ""), index_key(Kind.PHONE, change.before.wa_id or ""),
                "wa_id", change.new_wa_id,
            )
        else:
            new_key, old_key, field, value = index_key(Kind.BSUID, change.new_user_id or ""), None, "user_id", change.new_user_id
        if not value:
            return False
        recorded = update_if(
            self.table, Key=self._key(number, customer_id),
            UpdateExpression="SET #f = :v, changes = list_append(if_not_exists(changes, :empty), :change) "
            "ADD #keys :new, identity_version :one, change_ids :mid" + (" REMOVE user_id" if field == "wa_id" else ""),
            ConditionExpression="attribute_exists(customer_id) AND NOT contains(change_ids, :id)",
            ExpressionAttributeNames={"#f": field, "#keys": "keys"},
            ExpressionAttributeValues={
                ":v": value, ":empty": [], ":new": {new_key}, ":one": 1, ":mid": {change.message_id},
                ":id": change.message_id,
                ":change": [{"kind": change.kind, "at": change.at, "message_id": change.message_id}],
            },
        )
        self.table.put_item(Item={"phone_number_id": number, "sk": new_key, "customer_id": customer_id})
        if old_key and old_key != new_key:
            removed = update_if(
                self.table, Key={"phone_number_id": number, "sk": old_key},
                UpdateExpression="REMOVE customer_id", ConditionExpression="customer_id = :c",
                ExpressionAttributeValues={":c": customer_id},
            )
            if removed:
                self._drop_empty(number, old_key)
            update_if(
                self.table, Key=self._key(number, customer_id), UpdateExpression="DELETE #keys :old",
                ConditionExpression="attribute_exists(customer_id)",
                ExpressionAttributeNames={"#keys": "keys"}, ExpressionAttributeValues={":old": {old_key}},
            )
        return recorded

    def _drop_empty(self, number: str, key: str) -> None:
        try:
            self.table.delete_item(Key={"phone_number_id": number, "sk": key}, ConditionExpression="attribute_not_exists(customer_id)")
        except ClientError as error:
            if not is_condition_failure(error):
                raise  # else: claimed again by someone meanwhile

    @staticmethod
    def _key(number: str, customer_id: str) -> dict:
        return {"phone_number_id": number, "sk": CUSTOMER_PREFIX + customer_id}
