"""Push change events to the connected consoles through the WebSocket API's management endpoint:
each change to the consoles whose person may see its number (coexist/live/connections.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import ClientError

from coexist.live.connections import ConnectionStore, Listener
from coexist.live.events import change_event, changed_numbers

PARALLEL_POSTS = 8  # one post is one HTTPS call; a few at once keep a full room within a second


@dataclass(frozen=True)
class Delivery:
    sent: int = 0
    gone: int = 0  # connections API Gateway no longer has (410): removed from the store
    failed: int = 0  # any other error: that console catches up by itself (see console/js/live.js)

    def __add__(self, other: "Delivery") -> "Delivery":
        return Delivery(self.sent + other.sent, self.gone + other.gone, self.failed + other.failed)


class Fanout:
    def __init__(self, connections: ConnectionStore, management, numbers=None) -> None:
        self._connections = connections
        self._management = management  # a boto3 `apigatewaymanagementapi` client for the API's stage
        self._numbers = numbers  # coexist.live.numbers.ChangedNumbers: a streamed record's number

    def push(self, records: Iterable[dict]) -> Delivery:
        """A batch of the chats' and messages' keys-only stream records: one event per (table,
        number) changed, to the consoles that may see that number."""
        # Who listens is one read; a record's number is one read per changed item. With no console
        # open (most of the time, and during every bulk import or campaign), nothing else is read.
        listeners = list(self._connections.listeners())
        if not listeners:
            return Delivery()
        changes = changed_numbers(records, self._numbers.of, self._numbers.shown)
        total, gone = Delivery(), set()
        for table, number in changes:
            total += self.publish(change_event(table), number, [listener for listener in listeners if listener.connection_id not in gone], gone)
        return total

    def publish(self, event: dict, phone_number_id: str | None, listeners: list[Listener] | None = None,
                gone: set[str] | None = None) -> Delivery:
        """`event` to every listener that may see `phone_number_id` (all recorded ones unless given)."""
        data = json.dumps(event, separators=(",", ":")).encode()
        audience = [listener.connection_id for listener in (self._connections.listeners() if listeners is None else listeners)
                    if listener.receives(phone_number_id)]
        gone = set() if gone is None else gone
        with ThreadPoolExecutor(PARALLEL_POSTS) as pool:
            outcomes = list(pool.map(lambda connection_id: self._post(connection_id, data, gone), audience))
        return Delivery(sent=outcomes.count("sent"), gone=outcomes.count("gone"), failed=outcomes.count("failed"))

    def _post(self, connection_id: str, data: bytes, gone: set[str]) -> str:
        try:
            self._management.post_to_connection(ConnectionId=connection_id, Data=data)
            return "sent"
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "GoneException":
                self._connections.remove(connection_id)
                gone.add(connection_id)
                return "gone"
            return "failed"
