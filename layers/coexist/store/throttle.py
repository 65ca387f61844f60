"""Shared pacing state in DynamoDB: GCRA buckets per number and per recipient, circuit breakers.

Every sender (any Lambda instance) reserves slots through conditional writes on the same items,
so the configured rate holds across the fleet and no slot is handed out twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from botocore.exceptions import ClientError

from coexist.domain.pacing import MICROS, Rate, reserve
from coexist.store.conditional import is_condition_failure

IDLE_EXPIRY_S = 3600  # buckets unused for an hour disappear (TTL)
MAX_CONTENTION_RETRIES = 8


@dataclass(frozen=True)
class Slot:
    granted: bool
    wait_s: float  # granted: sleep this long, then send; refused: try again after this long
    at_s: float = 0.0  # granted: the moment (epoch seconds) reserved for this send


class Throttle:
    def __init__(self, table, clock=time.time):
        self.table = table
        self.clock = clock

    def take(self, bucket_id: str, rate: Rate, max_wait_s: float) -> Slot:
        """Reserve the next slot unless it is further away than `max_wait_s`."""
        for _ in range(MAX_CONTENTION_RETRIES):
            now_us = int(self.clock() * MICROS)
            item = self.table.get_item(Key={"bucket_id": bucket_id}, ConsistentRead=True).get("Item")
            tat = int(item["tat"]) if item else None
            reservation = reserve(tat, now_us, rate)
            if reservation.wait_us > max_wait_s * MICROS:
                return Slot(False, reservation.wait_us / MICROS)
            try:
                self.table.put_item(
                    Item={
                        "bucket_id": bucket_id,
                        "tat": reservation.new_tat_us,
                        "expires_at": reservation.new_tat_us // MICROS + IDLE_EXPIRY_S,
                    },
                    ConditionExpression="attribute_not_exists(tat)" if tat is None else "tat = :seen",
                    **({} if tat is None else {"ExpressionAttributeValues": {":seen": tat}}),
                )
                return Slot(True, reservation.wait_us / MICROS, (now_us + reservation.wait_us) / MICROS)
            except ClientError as error:
                if not is_condition_failure(error):
                    raise
        # Heavy contention: let the message come back shortly rather than spin.
        return Slot(False, 1.0)

    # --- circuit breaker per number ------------------------------------------------------
    def open_circuit(self, phone_number_id: str, reason: str, cool_down_s: int) -> None:
        now = int(self.clock())
        self.table.put_item(
            Item={
                "bucket_id": f"circuit#{phone_number_id}",
                "open_until": now + cool_down_s,
                "reason": reason,
                "opened_at": now,
                "expires_at": now + cool_down_s + IDLE_EXPIRY_S,
            }
        )

    def circuit(self, phone_number_id: str) -> dict | None:
        """The open circuit of this number, or None. Past its cool-down it lets a probe through."""
        item = self.table.get_item(Key={"bucket_id": f"circuit#{phone_number_id}"}, ConsistentRead=True).get("Item")
        if item and int(item["open_until"]) > self.clock():
            return {"reason": item["reason"], "open_until": int(item["open_until"])}
        return None

    def close_circuit(self, phone_number_id: str) -> None:
        self.table.delete_item(Key={"bucket_id": f"circuit#{phone_number_id}"})
