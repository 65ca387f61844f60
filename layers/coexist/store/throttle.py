"""Shared pacing state in DynamoDB: GCRA buckets per number and per recipient, circuit breakers.

Every sender (any Lambda instance) reserves slots through conditional writes on the same items,
so the configured rate holds across the fleet and no slot is handed out twice.

A number's circuit breaker lives on its bucket item (`open_until`, `reason`): the write that takes a
slot is also conditioned on the circuit being closed, so a send checks both in one request, and an
open circuit hands out no slot.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from botocore.exceptions import ClientError

from coexist.domain.pacing import MICROS, Rate, reserve
from coexist.store.conditional import is_condition_failure, refused_item

IDLE_EXPIRY_S = 3600  # buckets unused for an hour disappear (TTL)
MAX_CONTENTION_RETRIES = 8
# How late a send may leave after the moment its slot was asked for, because the write that books
# the slot must come back first; the slot after it is counted from then (`domain.pacing.reserve`).
# It need not cover the slowest write: the headroom below Meta's limit absorbs the rest with the
# network's jitter (docs/SCALE.md). A take that finds its bucket booked less than this far ahead
# gives up to this much of the number's second, so it is kept small: 1.5 slots at 80 msg/s.
WRITE_ROUND_TRIP_ALLOWANCE_US = 20_000
CIRCUIT_CLOSED = " AND (attribute_not_exists(open_until) OR open_until <= :now_s)"


def _tat_of(item: dict | None) -> int | None:
    """The slot time of a bucket as a refused write found it."""
    if not item or "tat" not in item:
        return None
    return int(item["tat"])


class _LastSeen:
    """The last slot this process saw per bucket, bounded (a pair bucket per recipient adds up)."""

    def __init__(self, capacity: int = 4096):
        self.capacity = capacity
        self._items: OrderedDict[str, int | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, bucket_id: str) -> int | None:
        with self._lock:
            return self._items.get(bucket_id)

    def put(self, bucket_id: str, tat: int | None) -> None:
        with self._lock:
            self._items[bucket_id] = tat
            self._items.move_to_end(bucket_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class Slot:
    granted: bool
    wait_s: float  # granted: sleep this long from when `take` returned, then send; refused: try again after this long
    at_s: float = 0.0  # granted: the moment (epoch seconds) reserved for this send
    circuit: str | None = None  # refused because the bucket's circuit is open: its reason


def _open_circuit_of(item: dict | None, now_s: float) -> tuple[str, int] | None:
    """The circuit a bucket item holds open at `now_s`."""
    if not item or "open_until" not in item:
        return None
    until = int(item["open_until"])
    return (item.get("reason", ""), until) if until > now_s else None


class Throttle:
    def __init__(self, table, clock=time.time):
        self.table = table
        self.clock = clock
        self._seen = _LastSeen()

    def take(self, bucket_id: str, rate: Rate, max_wait_s: float) -> Slot:
        """Reserve the next slot unless it is further away than `max_wait_s`.

        No read first: the write is conditioned on this process's last view of the bucket (or on
        the bucket being idle), so an uncontended take is one call. When another sender moved the
        bucket, the failed write returns it as it is now and the next try builds on that. A view
        can only lag behind the bucket (slots only move forward), so refusing on it is safe.
        """
        tat = self._seen.get(bucket_id)
        for _ in range(MAX_CONTENTION_RETRIES):
            now_s = self.clock()
            now_us = int(now_s * MICROS)
            reservation = reserve(tat, now_us, rate, WRITE_ROUND_TRIP_ALLOWANCE_US)
            if reservation.wait_us > max_wait_s * MICROS:
                return Slot(False, reservation.wait_us / MICROS)
            if tat is None or tat <= now_us:  # idle: any bucket at or before now gives the same slot
                condition, values = "(attribute_not_exists(tat) OR tat <= :now)", {":now": now_us}
            else:
                condition, values = "tat = :seen", {":seen": tat}
            # Past its cool-down a circuit lets the next send through (a probe); the write clears it.
            condition += CIRCUIT_CLOSED
            values[":now_s"] = int(now_s)
            try:
                self.table.put_item(
                    Item={
                        "bucket_id": bucket_id,
                        "tat": reservation.new_tat_us,
                        "expires_at": reservation.new_tat_us // MICROS + IDLE_EXPIRY_S,
                    },
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                found = refused_item(error)
                circuit = _open_circuit_of(found, int(now_s))
                if circuit:
                    return Slot(False, max(1.0, circuit[1] - now_s), circuit=circuit[0])
                tat = _tat_of(found)
                self._seen.put(bucket_id, tat)
                continue
            self._seen.put(bucket_id, reservation.new_tat_us)
            at_us = now_us + reservation.wait_us
            # Waited for from now, the write's round trip behind: a slot is kept at its moment, not
            # that much after it.
            return Slot(True, max(0.0, at_us / MICROS - self.clock()), at_us / MICROS)
        # Heavy contention: let the message come back shortly rather than spin.
        return Slot(False, 1.0)

    def count(self, bucket_id: str, rate: Rate, messages: int = 1) -> bool:
        """Count messages that were not paced here (a number's incoming messages, which Meta counts
        with its outgoing ones) as slots taken now: never refused, never waited for; the sends
        after them take later slots. One write when uncontended: the update moves a bucket that is
        booked ahead (`tat + n·period`), or restarts an idle one from now; a write whose condition
        no longer holds returns the bucket, and the other form is tried. Unlike `take`'s put, an
        update keeps the bucket's circuit. False when the bucket kept moving under every write: the
        messages go uncounted rather than fail what counts them (a retry would not count them again)."""
        add_us = messages * rate.period_us
        tat = self._seen.get(bucket_id)
        for _ in range(MAX_CONTENTION_RETRIES):
            now_us = int(self.clock() * MICROS)
            if tat is not None and tat >= now_us:
                expression, condition = "SET tat = tat + :add", "tat >= :now"
                values = {":add": add_us, ":now": now_us}
            else:
                expression, condition = "SET tat = :new, expires_at = :expires", "attribute_not_exists(tat) OR tat < :now"
                values = {":new": now_us + add_us, ":now": now_us, ":expires": (now_us + add_us) // MICROS + IDLE_EXPIRY_S}
            try:
                written = self.table.update_item(
                    Key={"bucket_id": bucket_id}, UpdateExpression=expression, ConditionExpression=condition,
                    ExpressionAttributeValues=values, ReturnValues="UPDATED_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                found = _tat_of(refused_item(error))
                tat = found if found is not None else -1  # a missing bucket is idle
                continue
            self._seen.put(bucket_id, int(written["Attributes"]["tat"]))
            return True
        return False

    # --- circuit breaker per number, on the number's bucket -----------------------------
    def open_circuit(self, phone_number_id: str, reason: str, cool_down_s: int) -> None:
        now = int(self.clock())
        key = {"bucket_id": number_bucket(phone_number_id)}
        circuit = {":until": now + cool_down_s, ":reason": reason, ":now": now}
        # The bucket may hold slots reserved further ahead than the cool-down: its expiry only grows.
        try:
            self.table.update_item(
                Key=key,
                UpdateExpression="SET open_until = :until, reason = :reason, opened_at = :now, expires_at = :expires",
                ConditionExpression="attribute_not_exists(expires_at) OR expires_at < :expires",
                ExpressionAttributeValues={**circuit, ":expires": now + cool_down_s + IDLE_EXPIRY_S},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise
            self.table.update_item(Key=key, UpdateExpression="SET open_until = :until, reason = :reason, opened_at = :now",
                                   ExpressionAttributeValues=circuit)

    def circuit(self, phone_number_id: str) -> dict | None:
        """The open circuit of this number, or None. Past its cool-down it lets a probe through.
        (`take` on the number's bucket checks it too, in its own write: this read is for a send
        that already holds its slot.)"""
        item = self.table.get_item(Key={"bucket_id": number_bucket(phone_number_id)}, ConsistentRead=True).get("Item")
        circuit = _open_circuit_of(item, self.clock())
        return {"reason": circuit[0], "open_until": circuit[1]} if circuit else None


def number_bucket(phone_number_id: str) -> str:
    """The bucket of a number's throughput, which also holds its circuit breaker."""
    return f"number#{phone_number_id}"
