"""The consent ledger (coexist.domain.consent), kept in the Contacts table beside the customer's
contact item.

Why there: consent is a fact about the customer as the business knows them, keyed like the contact
(business number, customer id), and every function that records it already works on that table. A
customer's contact, current consent and whole history are then one key range of one partition
(`customer_id` = `<customer id>` and `<customer id>#consent#…`): an export or an erasure of a
customer reads or deletes them with one query, and no table, grant or stack change is needed.

- The current state of each purpose is an attribute of the contact item, `consent_<purpose>`:
  `{state, at, change_id}`.
- Each change is its own item, append-only: `customer_id` = `<customer id>#consent#<at>#<recorded ms>#<change id>`,
  so a query on that prefix lists the history newest first. Nothing updates or deletes it.
- A marker per change id (`<customer id>#consent-id#<change id>`) makes the same evidence the same
  change whenever it comes again (a re-uploaded file is recorded at another time).

`ConsentLedger.record` is the one place a consent change is written, whatever its source (a
keyword, an agent, an import, Meta's 131050): the change, its marker and the new current state go
in one transaction, so none exists without the others.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable

from botocore.exceptions import ClientError

from coexist.domain import consent
from coexist.domain.consent import ConsentChange, State
from coexist.store.conditional import put_if_absent, update_if
from coexist.store.items import from_item_value

HISTORY_MARK = "#consent#"
MARKER_MARK = "#consent-id#"
CURRENT_PREFIX = "consent_"
CONDITION_FAILED = "ConditionalCheckFailed"


class Outcome(StrEnum):
    APPLIED = "applied"  # recorded, and it is the purpose's current state
    SUPERSEDED = "superseded"  # recorded in the history; a newer change already holds the state
    DUPLICATE = "duplicate"  # this change (the same evidence) was recorded before: nothing written


@dataclass(frozen=True)
class Current:
    state: State
    at: int | None = None
    change_id: str | None = None


def history_prefix(customer_id: str) -> str:
    return customer_id + HISTORY_MARK


def history_key(change: ConsentChange, recorded_ms: int) -> str:
    # When it happened, then when it was recorded: two changes of one second keep their order.
    return f"{history_prefix(change.customer_id)}{change.at:012d}#{recorded_ms:013d}#{change.change_id}"


def marker_key(customer_id: str, change_id: str) -> str:
    return f"{customer_id}{MARKER_MARK}{change_id}"


def current_of(contact: dict | None) -> dict[str, Current]:
    """Every purpose's current state from a contact item (`unknown` where nothing was recorded)."""
    found = {p: Current(State.UNKNOWN) for p in consent.PURPOSES}
    for name, value in (contact or {}).items():
        if name.startswith(CURRENT_PREFIX) and isinstance(value, dict) and name[len(CURRENT_PREFIX):] in consent.PURPOSES:
            found[name[len(CURRENT_PREFIX):]] = Current(State(value["state"]), int(value["at"]), value.get("change_id"))
    return found


def states_of(contact: dict | None) -> dict[str, str]:
    """purpose -> state, as the send policy reads it."""
    return {purpose: current.state.value for purpose, current in current_of(contact).items()}


def change_from_item(item: dict) -> dict:
    """A history item as the API shows it."""
    item = from_item_value(item)
    return {
        "change_id": item["change_id"], "purpose": item["purpose"], "state": item["state"], "at": item["at"],
        "recorded_at": item["recorded_at"], "applied": item["applied"], "evidence": item["evidence"],
    }


class ConsentLedger:
    def __init__(self, table, clock=time.time, on_recorded: Callable[[ConsentChange, Outcome], None] | None = None):
        self.table = table
        self.clock = clock
        # Told of every change written (applied or superseded, never a duplicate), after the write.
        self.on_recorded = on_recorded

    def record(self, change: ConsentChange) -> Outcome:
        outcome = self._write(change)
        if outcome is not Outcome.DUPLICATE and self.on_recorded is not None:
            self.on_recorded(change, outcome)
        return outcome

    def _write(self, change: ConsentChange) -> Outcome:
        attribute = CURRENT_PREFIX + change.purpose
        current = {"Update": {
            "TableName": self.table.name,
            "Key": {"phone_number_id": change.phone_number_id, "customer_id": change.customer_id},
            "UpdateExpression": "SET #c = :current",
            # Newest wins; at the same second, the later recording.
            "ConditionExpression": "attribute_not_exists(#c) OR #c.#at <= :at",
            "ExpressionAttributeNames": {"#c": attribute, "#at": "at"},
            "ExpressionAttributeValues": {
                ":current": {"state": change.state.value, "at": change.at, "change_id": change.change_id},
                ":at": change.at,
            },
        }}
        reasons = self._transact([*self._new_items(change, applied=True), current])
        if reasons is None:
            return Outcome.APPLIED
        if reasons[0] == CONDITION_FAILED:
            return Outcome.DUPLICATE
        if reasons[2] != CONDITION_FAILED:
            raise RuntimeError(f"consent change not recorded: {reasons}")
        # An older change arriving late: history keeps it, the state stays with the newer one.
        reasons = self._transact(self._new_items(change, applied=False))
        if reasons is None:
            return Outcome.SUPERSEDED
        if reasons[0] == CONDITION_FAILED:
            return Outcome.DUPLICATE
        raise RuntimeError(f"consent change not recorded: {reasons}")

    def _transact(self, items: list[dict]) -> list[str | None] | None:
        """None when written; else each item's cancellation reason (a failed condition, or None)."""
        try:
            self.table.meta.client.transact_write_items(TransactItems=items)  # the resource's client: plain values
            return None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if CONDITION_FAILED not in reasons:
                raise  # a conflict with another transaction, throttling: the caller's retry
            return [r if r == CONDITION_FAILED else None for r in reasons]

    def _new_items(self, change: ConsentChange, applied: bool) -> list[dict]:
        """The change's history item and its marker (one per change id: what makes the same evidence
        the same change whenever it is recorded), each put only if new."""
        recorded_ms = int(self.clock() * 1000)
        history = self._history_item(change, applied, recorded_ms)
        marker = {
            "phone_number_id": change.phone_number_id,
            "customer_id": marker_key(change.customer_id, change.change_id),
            "history_key": history["customer_id"],
        }
        return [
            {"Put": {"TableName": self.table.name, "Item": item, "ConditionExpression": "attribute_not_exists(customer_id)"}}
            for item in (marker, history)
        ]

    def _history_item(self, change: ConsentChange, applied: bool, recorded_ms: int) -> dict:
        return {
            "phone_number_id": change.phone_number_id,
            "customer_id": history_key(change, recorded_ms),
            "customer": change.customer_id,
            "change_id": change.change_id,
            "purpose": change.purpose,
            "state": change.state.value,
            "at": change.at,
            "recorded_at": recorded_ms // 1000,
            "applied": applied,
            "evidence": consent.evidence_to_dict(change.evidence),
        }

    def current(self, phone_number_id: str, customer_id: str) -> dict[str, Current]:
        item = self.table.get_item(Key={"phone_number_id": phone_number_id, "customer_id": customer_id}).get("Item")
        return current_of(item)

    def history(self, phone_number_id: str, customer_id: str, limit: int, start_key: dict | None = None) -> tuple[list[dict], dict | None]:
        """One page of a customer's changes, newest first; returns (items, last_evaluated_key)."""
        kwargs = {
            "KeyConditionExpression": "phone_number_id = :n AND begins_with(customer_id, :p)",
            "ExpressionAttributeValues": {":n": phone_number_id, ":p": history_prefix(customer_id)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        response = self.table.query(**kwargs)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    def erase(self, phone_number_id: str, customer_id: str) -> int:
        """A customer's erasure: every change and marker of its ledger goes (the current state goes
        with the contact item). Returns how many items were deleted."""
        erased = 0
        start = None
        while True:
            kwargs = {
                "KeyConditionExpression": "phone_number_id = :n AND begins_with(customer_id, :p)",
                "ExpressionAttributeValues": {":n": phone_number_id, ":p": customer_id + "#"},
                "ProjectionExpression": "phone_number_id, customer_id",
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.table.query(**kwargs)
            with self.table.batch_writer() as batch:
                for key in page.get("Items", []):
                    batch.delete_item(Key=key)
            erased += len(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return erased

    def absorb(self, phone_number_id: str, survivor_id: str, loser_id: str) -> None:
        """Two customers merged: the loser's changes join the survivor's history (each once), and
        each purpose's newer state wins. Idempotent, so an interrupted merge is completed by its retry."""
        start = None
        while True:
            items, start = self.history(phone_number_id, loser_id, 200, start)
            for item in items:
                moved = dict(item, customer=survivor_id)
                moved["customer_id"] = survivor_id + item["customer_id"][len(loser_id):]
                put_if_absent(self.table, moved, "customer_id")
                put_if_absent(self.table, {
                    "phone_number_id": phone_number_id, "customer_id": marker_key(survivor_id, item["change_id"]),
                    "history_key": moved["customer_id"],
                }, "customer_id")
            if not start:
                break
        loser = self.table.get_item(Key={"phone_number_id": phone_number_id, "customer_id": loser_id}).get("Item") or {}
        for name, value in loser.items():
            if not name.startswith(CURRENT_PREFIX) or not isinstance(value, dict):
                continue
            update_if(
                self.table,
                Key={"phone_number_id": phone_number_id, "customer_id": survivor_id},
                UpdateExpression="SET #c = :v",
                ConditionExpression="attribute_not_exists(#c) OR #c.#at < :at",
                ExpressionAttributeNames={"#c": name, "#at": "at"},
                ExpressionAttributeValues={":v": value, ":at": value["at"]},
            )
