"""Who a customer is: the identifiers Meta names a WhatsApp user by, and how they resolve to one customer.

What Meta's "Business-scoped user IDs" page (updated 2026-11-05) says, and this module relies on:

- the phone number (`wa_id`, `from`, `recipient_id`) may be absent: a user who adopted a username
  can write without exposing it;
- the business-scoped user id (BSUID: `user_id`, `from_user_id`, `recipient_user_id`) is in every
  messages webhook since 2026-04, formatted `<ISO country>.<up to 128 alphanumerics>`
  (`US.13491208655302741918`); a parent BSUID (`parent_user_id`) carries `ENT` after the country
  (`US.ENT.11815799212886844830`) and names the user across linked portfolios;
- the username (`contacts[].profile.username`) changes at will: shown, never used as a key;
- a phone number change creates a new BSUID (system messages `user_changed_number` and
  `user_changed_user_id` announce them).

Assumed, not stated by Meta: a phone number can be given to another person later, so a phone number
seen beside a BSUID other than the one its customer has is the number moving (re-pointed), never a
reason to merge two people; two customers merge only when the same webhook ties a BSUID or a parent
BSUID of one to an identifier of the other.

Everything here is pure: the store reads what the identifiers point at, `resolve` decides, the store
writes the decision with conditional writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

_PHONE = re.compile(r"\+?[\d\s\-().]+")
BSUID = re.compile(r"[A-Z]{2}\.[A-Za-z0-9]{1,128}")
PARENT_BSUID = re.compile(r"[A-Z]{2}\.ENT\.[A-Za-z0-9]{1,128}")


class Kind(StrEnum):
    """An identifier's kind, and the prefix of its index key."""

    PHONE = "wa"
    BSUID = "bsuid"
    PARENT = "parent"


def index_key(kind: Kind, value: str) -> str:
    return f"{kind.value}#{value}"


def normalize_phone(value: str) -> str:
    """"16505551234" and "+1 (650) 555-1234" are the same number."""
    return re.sub(r"\D", "", value)


def kind_of(value: str) -> Kind | None:
    """What a bare identifier is (a history thread's `id`, a message's `from`): None if unknown."""
    value = value.strip()
    if PARENT_BSUID.fullmatch(value):
        return Kind.PARENT
    if BSUID.fullmatch(value):
        return Kind.BSUID
    if _PHONE.fullmatch(value) and normalize_phone(value):
        return Kind.PHONE
    return None


@dataclass(frozen=True)
class Identifiers:
    """Everything one webhook item says about who the customer of a business number is."""

    phone_number_id: str
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None  # display only

    @classmethod
    def of(cls, phone_number_id: str, *values: str | None, username: str | None = None) -> "Identifiers":
        """Identifiers from bare values of any kind (`from`, `from_user_id`, a thread id, …)."""
        found = cls(phone_number_id, username=username)
        for value in values:
            found = found.with_value(value)
        return found

    def with_value(self, value: str | None) -> "Identifiers":
        kind = kind_of(value) if value else None
        if kind is Kind.PHONE and not self.wa_id:
            return replace(self, wa_id=normalize_phone(value))
        if kind is Kind.BSUID and not self.user_id:
            return replace(self, user_id=value.strip())
        if kind is Kind.PARENT and not self.parent_user_id:
            return replace(self, parent_user_id=value.strip())
        return self

    def combined(self, other: "Identifiers | None") -> "Identifiers":
        """These identifiers, completed by another source's (a message by its `contacts[]` entry)."""
        if other is None:
            return self
        return replace(
            self,
            wa_id=self.wa_id or other.wa_id,
            user_id=self.user_id or other.user_id,
            parent_user_id=self.parent_user_id or other.parent_user_id,
            username=self.username or other.username,
        )

    def keys(self) -> list[str]:
        """Index keys, strongest first: the BSUID, the parent BSUID, then the phone number."""
        found = []
        if self.user_id:
            found.append(index_key(Kind.BSUID, self.user_id))
        if self.parent_user_id:
            found.append(index_key(Kind.PARENT, self.parent_user_id))
        if self.wa_id:
            found.append(index_key(Kind.PHONE, self.wa_id))
        return found

    @property
    def empty(self) -> bool:
        return not self.keys()


@dataclass(frozen=True)
class Known:
    """A customer an identifier already points at."""

    customer_id: str
    created_at: int
    user_id: str | None = None  # the customer's current BSUID


@dataclass(frozen=True)
class Resolution:
    """What to write so that `identifiers` name exactly one customer."""

    customer_id: str | None  # None: nobody is known by any of them, a new customer
    claim: tuple[str, ...] = ()  # index keys nobody holds yet: point them at the customer
    repoint: tuple[str, ...] = ()  # a phone number that moved to this customer from another
    merge: tuple[str, ...] = field(default=())  # other customers found to be the same person


def resolve(identifiers: Identifiers, found: dict[str, Known]) -> Resolution:
    """Decide which customer `identifiers` belong to, given what each index key points at now.

    The survivor of a merge is the oldest customer (then the smallest id), so two webhooks racing
    to merge the same pair choose the same survivor.
    """
    keys = identifiers.keys()
    claim = tuple(k for k in keys if k not in found)
    if not found:
        return Resolution(None, claim)
    phone = index_key(Kind.PHONE, identifiers.wa_id) if identifiers.wa_id else None
    by_bsuid = [found[k] for k in keys if k != phone and k in found]
    repoint: tuple[str, ...] = ()
    people = {k.customer_id: k for k in by_bsuid}
    if phone in found:
        owner = found[phone]
        moved = bool(identifiers.user_id and owner.user_id and owner.user_id != identifiers.user_id)
        if moved and by_bsuid:
            repoint = (phone,) if owner.customer_id not in people else ()
        elif moved:
            # The number now belongs to a BSUID nobody knows yet: a new customer takes it.
            return Resolution(None, claim, (phone,))
        else:
            people.setdefault(owner.customer_id, owner)
    survivor = min(people.values(), key=lambda k: (k.created_at, k.customer_id))
    merge = tuple(sorted(c for c in people if c != survivor.customer_id))
    return Resolution(survivor.customer_id, claim, repoint, merge)


# System messages of a customer's identity (Meta's system messages reference, 2026-08-11).
USER_CHANGED_NUMBER = "user_changed_number"
USER_CHANGED_USER_ID = "user_changed_user_id"


@dataclass(frozen=True)
class IdentityChange:
    """A customer's new phone number or BSUID, announced by a system message."""

    kind: str  # USER_CHANGED_NUMBER | USER_CHANGED_USER_ID
    before: Identifiers  # who sent the notice (the old identifiers)
    new_wa_id: str | None
    new_user_id: str | None
    at: int
    message_id: str

    @property
    def after(self) -> Identifiers:
        """Who the customer is once the change is applied (a new number comes with a new BSUID Meta
        has not sent yet, so the old one is not carried over)."""
        if self.kind == USER_CHANGED_NUMBER:
            return Identifiers(self.before.phone_number_id, wa_id=self.new_wa_id, username=self.before.username)
        return replace(self.before, user_id=self.new_user_id)


# A customer id (and so a chat id) is random letters: opaque, stable, never derived from a phone
# number and never mistaken for one in a URL, an execution name or a log line.
CUSTOMER_ID = re.compile(r"c[a-z]{24}")


def is_customer_id(value: str) -> bool:
    return bool(CUSTOMER_ID.fullmatch(value or ""))


@dataclass(frozen=True)
class Customer:
    """A customer of one business number, with the identifiers it is known by now."""

    phone_number_id: str
    customer_id: str
    created_at: int
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None
    identity_version: int = 0  # raised on every change of the identifiers, so copies move forward only
    merged_into: str | None = None  # this customer turned out to be that one
    keys: frozenset[str] = frozenset()  # every index key pointing here
    change_ids: frozenset[str] = frozenset()  # the system messages of the identity changes applied
    unfinished_merges: frozenset[str] = frozenset()  # customers being folded into this one, not yet recorded as done

    @property
    def known(self) -> Known:
        return Known(self.customer_id, self.created_at, self.user_id)

    def differs_from(self, identifiers: Identifiers) -> bool:
        """Does `identifiers` tell something this record does not hold yet?"""
        return any(
            new is not None and new != old
            for new, old in (
                (identifiers.wa_id, self.wa_id), (identifiers.user_id, self.user_id),
                (identifiers.parent_user_id, self.parent_user_id), (identifiers.username, self.username),
            )
        ) or any(k not in self.keys for k in identifiers.keys())
