"""Putting domain events on the EventBridge bus: batched, retried, never failing the caller.

Callers publish after the business write the event describes, so an event never announces a fact
that was not stored. Publishing is at least once: an entry EventBridge refuses (or a call that
fails) is retried with backoff; after the last attempt the events are given up, counted
(`CrmEventsFailed`, an alarm) and logged by type and id, and the caller goes on: a CRM that misses
an event never costs a customer message. Consumers dedupe on the event's deterministic `id`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Callable, Iterable

from coexist.resources import EVENT_SOURCE

if TYPE_CHECKING:
    from coexist.events.models import DomainEvent

log = logging.getLogger(__name__)

MAX_ENTRIES = 10  # PutEvents' limit per call
ATTEMPTS = 3


class EventPublisher:
    def __init__(self, client, bus_name: str, *, include_text: bool = False,
                 on_failure: Callable[[int], None] = lambda count: None, attempts: int = ATTEMPTS,
                 sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.bus_name = bus_name
        self.include_text = include_text
        self.on_failure = on_failure
        self.attempts = attempts
        self.sleep = sleep

    def publish(self, *events: DomainEvent | Iterable[DomainEvent]) -> int:
        """Put these events on the bus; how many EventBridge took. Never raises."""
        # Imported here: the models load with the first event published, not in every function
        # that holds a publisher (the sender publishes only on a failure).
        from coexist.events.models import DomainEvent

        flat = [e for item in events for e in ([item] if isinstance(item, DomainEvent) else item)]
        if not flat:
            return 0
        entries = [self.entry(event) for event in flat]
        published = 0
        for start in range(0, len(entries), MAX_ENTRIES):
            published += self._put(entries[start:start + MAX_ENTRIES])
        return published

    def entry(self, event: DomainEvent) -> dict:
        exclude = set() if self.include_text else set(event.TEXT_FIELDS)
        return {
            "Source": EVENT_SOURCE,
            "DetailType": event.type,
            "Detail": event.model_dump_json(exclude=exclude),
            "EventBusName": self.bus_name,
        }

    def _put(self, batch: list[dict]) -> int:
        pending, published = batch, 0
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(0.1 * 2 ** attempt)
            try:
                answer = self.client.put_events(Entries=pending)
            except Exception as error:  # the call itself failed: every entry is still pending
                log.warning("events not put, to be retried", extra={"error_type": type(error).__name__, "events": len(pending)})
                continue
            failed = [entry for entry, result in zip(pending, answer.get("Entries", [])) if result.get("ErrorCode")]
            published += len(pending) - len(failed)
            pending = failed
            if not pending:
                return published
        self._give_up(pending)
        return published

    def _give_up(self, entries: list[dict]) -> None:
        import json

        ids = [(entry["DetailType"], json.loads(entry["Detail"])["id"]) for entry in entries]
        log.error("events given up after retries", extra={"events": [f"{kind}:{event_id}" for kind, event_id in ids]})
        self.on_failure(len(entries))


class NoBus:
    """No bus configured: events go nowhere (a function that is not given one publishes nothing)."""

    include_text = False

    def publish(self, *events) -> int:
        return 0
