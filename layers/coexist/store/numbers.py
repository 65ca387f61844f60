"""Business phone numbers and their WhatsApp Business Accounts."""

from __future__ import annotations

import hashlib
import json
import time

from coexist.domain import coexistence
from coexist.domain.app_activity import Quiet, last_sign, quiet_spell
from coexist.domain.records import AccountEvent, HistoryChunkImported, HistoryDeclined, NumberSeen
from coexist.store.conditional import raise_to, update_if
from coexist.store.items import to_item_value
from coexist.store.memo import BoundedMemo

BY_WABA = "by_waba"
ACCOUNT_STATE = "STATE"


class NumberStore:
    def __init__(self, table):
        self.table = table
        self._seen = BoundedMemo(capacity=1000)  # the (number, display, account) facts this process wrote

    def record_seen(self, seen: NumberSeen) -> None:
        key = {"phone_number_id": seen.phone_number_id}
        facts = (seen.phone_number_id, seen.display_phone_number, seen.waba_id, bool(seen.coexistence_evidence))
        if not self._seen.get(facts):  # this process wrote the same values already: nothing would change
            sets = ["display_phone_number = :display", "first_seen_at = if_not_exists(first_seen_at, :now)"]
            values: dict = {":display": seen.display_phone_number, ":now": int(time.time())}
            if seen.waba_id:
                sets.append("waba_id = :waba")
                values[":waba"] = seen.waba_id
            if seen.coexistence_evidence:
                sets.append("coexistence_evidence = :true")
                values[":true"] = True
            self.table.update_item(Key=key, UpdateExpression="SET " + ", ".join(sets), ExpressionAttributeValues=values)
            self._seen.put(facts, True)
        if seen.app_activity_at:
            # Meta disconnects a number whose phone app is unused for ~14 days: track the last use.
            raise_to(self.table, key, "last_app_activity_at", seen.app_activity_at)

    def record_history_chunk(self, chunk: HistoryChunkImported) -> None:
        key = {"phone_number_id": chunk.phone_number_id}
        self.table.update_item(
            Key=key,
            UpdateExpression="ADD history_chunks :chunk",
            ExpressionAttributeValues={":chunk": {f"{chunk.phase}:{chunk.chunk_order}"}},
        )
        # Chunks arrive in any order: progress reported is the furthest any chunk announced.
        raise_to(
            self.table, key, "history_progress", chunk.progress,
            {"history_phase": chunk.phase, "history_chunk": chunk.chunk_order, "history_updated_at": int(time.time())},
        )

    def record_history_declined(self, declined: HistoryDeclined) -> None:
        self.table.update_item(
            Key={"phone_number_id": declined.phone_number_id},
            UpdateExpression="SET history_declined = :true, history_declined_code = :code, "
            "history_declined_at = if_not_exists(history_declined_at, :now)",
            ExpressionAttributeValues={":true": True, ":code": declined.code, ":now": int(time.time())},
        )

    def record_state(self, phone_number_id: str, event: AccountEvent, state: str) -> None:
        _record_state(self.table, {"phone_number_id": phone_number_id}, event, state)

    def get(self, phone_number_id: str) -> dict | None:
        return self.table.get_item(Key={"phone_number_id": phone_number_id}).get("Item")

    def all(self) -> list[dict]:
        """Every number of this deployment (a handful): for scheduled jobs, never a request path."""
        items, kwargs = [], {}
        while True:
            page = self.table.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record_inactivity_warning(self, phone_number_id: str, days: int, last_sign_at: int, at: int) -> bool:
        """Note that the `days` warning of the quiet spell since `last_sign_at` was given, so the
        next run does not give it again (False: noted already, or the app was used since)."""
        return update_if(
            self.table,
            Key={"phone_number_id": phone_number_id},
            UpdateExpression="SET app_quiet_warned_days = :days, app_quiet_since = :since, app_quiet_warned_at = :at",
            ConditionExpression="attribute_exists(phone_number_id) AND "
            "(attribute_not_exists(last_app_activity_at) OR last_app_activity_at <= :since) AND "
            "(attribute_not_exists(app_quiet_since) OR app_quiet_since < :since OR app_quiet_warned_days < :days)",
            ExpressionAttributeValues={":days": days, ":since": last_sign_at, ":at": at},
        )

    def find_by_display_number(self, waba_id: str, display_number: str) -> str | None:
        response = self.table.query(
            IndexName=BY_WABA,
            KeyConditionExpression="waba_id = :w",
            ExpressionAttributeValues={":w": waba_id},
        )
        digits = "".join(ch for ch in display_number if ch.isdigit())
        for item in response.get("Items", []):
            if "".join(ch for ch in item.get("display_phone_number", "") if ch.isdigit()) == digits:
                return item["phone_number_id"]
        return None


class AccountStore:
    """WABA-level state and the full log of `account_update` events."""

    def __init__(self, table):
        self.table = table

    def record_event(self, event: AccountEvent) -> None:
        digest = hashlib.sha256(json.dumps(event.raw, sort_keys=True).encode()).hexdigest()[:16]
        self.table.put_item(
            Item={
                "waba_id": event.waba_id,
                "sk": f"EVENT#{event.time or 0:011d}#{event.event}#{digest}",
                "event": event.event,
                "event_time": event.time or 0,
                "detail": to_item_value(event.raw),
            }
        )

    def record_state(self, event: AccountEvent, state: str) -> None:
        _record_state(self.table, {"waba_id": event.waba_id, "sk": ACCOUNT_STATE}, event, state)

    def state(self, waba_id: str) -> dict | None:
        return self.table.get_item(Key={"waba_id": waba_id, "sk": ACCOUNT_STATE}).get("Item")


def _record_state(table, key: dict, event: AccountEvent, state: str) -> None:
    """The newest event decides the state; on a tie the later-processed one wins (idempotent)."""
    values = {":state": state, ":event": event.event, ":t": event.time or 0}
    sets = ["#state = :state", "#event = :event", "event_time = :t"]
    reason = (event.disconnection or {}).get("reason")
    if reason:
        sets.append("reason = :reason")
        values[":reason"] = reason
    remove = "" if reason else " REMOVE reason"
    update_if(
        table,
        Key=key,
        UpdateExpression="SET " + ", ".join(sets) + remove,
        ConditionExpression="attribute_not_exists(event_time) OR event_time <= :t",
        ExpressionAttributeNames={"#state": "state", "#event": "event"},
        ExpressionAttributeValues=values,
    )


def coexistence_state_of(number: dict, account_state: dict | None) -> dict:
    own = {k: number[k] for k in ("state", "event", "event_time", "reason") if k in number} or None
    return coexistence.current_state(own, account_state, bool(number.get("coexistence_evidence")))


def quiet_of(number: dict, account_state: dict | None, now: int) -> Quiet | None:
    """The number's Business App quiet spell (the 14-day rule), with the warning already noted for
    it; None when the rule does not apply (the number is not in Coexistence)."""
    state = coexistence_state_of(number, account_state)
    if state["state"] != coexistence.CONNECTED:
        return None
    since = last_sign(number.get("last_app_activity_at"), state.get("event_time"), number.get("first_seen_at"))
    if since is None:
        return None
    warned = number.get("app_quiet_warned_days") if int(number.get("app_quiet_since") or 0) == since else None
    return quiet_spell(since, now, int(warned) if warned is not None else None)
