"""The `statuses` webhooks Meta sends after accepting a message: sent → delivered → read.

They are posted from worker threads, never from the thread that answered the send: the caller
(local mode's sender) may be holding a lock while it waits for our response, and a status posted
synchronously into its own webhook would wait on that same process. Each POST carries one status,
shaped like Meta's examples (tests/fixtures/meta/meta_docs/status_*.json) and signed with
`X-Hub-Signature-256` over the exact bytes sent.

A message's statuses form a chain: the next one is scheduled only after the previous POST ended,
so they arrive in order even with several workers (unless the `order` knob says otherwise). A
POST that fails is retried a few times with a short backoff, then counted and logged, and the
chain goes on: Meta keeps retrying for days, a sandbox must stay bounded.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from coexist.meta.signature import sign

from local.meta import SIGNATURE_HEADER
from local.meta_sandbox.catalog import Number, Template
from local.meta_sandbox.errors import webhook_error

log = logging.getLogger("local.meta_sandbox")
DEFAULT_DELAYS_S = (0.05, 0.1, 0.2)  # accepted → sent, sent → delivered, delivered → read
RETRY_DELAYS_S = (0.2, 0.5, 1.0)  # then the status is given up (counted as failed)
POST_TIMEOUT_S = 5.0


def pricing(template: Template | None) -> dict:
    """Per-message pricing (PMP, since 2025-07-01) as it appears on the `sent` status."""
    if template is None:
        return {"billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    return {"billable": True, "pricing_model": "PMP", "type": "regular", "category": template.category.lower()}


def envelope(number: Number, status: dict) -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": number.waba_id,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": number.display_phone_number, "phone_number_id": number.phone_number_id},
                            "statuses": [status],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


@dataclass
class Step:
    delay_s: float  # after the previous step's POST ended
    body: bytes
    status: str
    attempts: int = 0


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    steps: list[Step] = field(compare=False)
    generation: int = field(compare=False, default=0)


def plan(
    number: Number,
    wamid: str,
    recipient_id: str,
    template: Template | None,
    delays_s: tuple[float, float, float] = DEFAULT_DELAYS_S,
    order: str = "in_order",
    duplicates: int = 0,
    failure_code: int | None = None,
    now: float | None = None,
    callback_data: str | None = None,
    recipient_user_id: str | None = None,
    read_receipts: bool = True,
) -> list[Step]:
    """The status POSTs for one accepted message, in the order they will be sent. Each carries the
    send's `biz_opaque_callback_data`, as Meta's do."""
    now = time.time() if now is None else now
    echoed = {"biz_opaque_callback_data": callback_data} if callback_data is not None else {}

    def status(name: str, at: float, **extra) -> dict:
        # A message sent to a BSUID reports `recipient_user_id` (Meta's BSUID page); the phone
        # number only when Meta may share it, which the sandbox never assumes.
        who = {"recipient_user_id": recipient_user_id} if recipient_user_id else {"recipient_id": recipient_id}
        return {"id": wamid, "status": name, "timestamp": str(int(at)), **who, **echoed, **extra}

    if failure_code is not None:
        events = [status("failed", now + delays_s[0], errors=[webhook_error(failure_code)])]
    else:
        # Timestamps are the times the events happened, even if the knobs reorder their delivery.
        sent_at = now + delays_s[0]
        delivered_at = sent_at + delays_s[1]
        events = [
            status("sent", sent_at, pricing=pricing(template)),
            status("delivered", delivered_at),
        ]
        if read_receipts:  # a customer who turned them off is never reported as having read
            events.append(status("read", delivered_at + delays_s[2]))
    if order == "reverse":
        events.reverse()
    steps = []
    for index, event in enumerate(events):
        body = json.dumps(envelope(number, event)).encode()
        steps.append(Step(delays_s[min(index, len(delays_s) - 1)], body, event["status"]))
        steps += [Step(0.0, body, event["status"]) for _ in range(duplicates)]  # Meta duplicates too
    return steps


class StatusOutbox:
    """Worker threads posting planned status chains to the webhook URL."""

    def __init__(self, webhook_url: str | None, app_secret: str, workers: int = 4):
        self.webhook_url = webhook_url
        self.app_secret = app_secret
        self.workers = workers
        self.counts = {"posted": 0, "failed": 0, "retried": 0}
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._busy = 0
        self._generation = 0  # bumped by clear(): chains in flight then are dropped, not continued
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"meta-sandbox-statuses-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 5) -> None:
        with self._wake:
            self._stopping = True
            self._due.clear()
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def schedule(self, steps: list[Step]) -> None:
        if not steps or not self.webhook_url:
            return
        self._push(time.monotonic() + steps[0].delay_s, steps, self._generation)

    def clear(self) -> None:
        with self._wake:
            self._due.clear()
            self._generation += 1
            self.counts.update(posted=0, failed=0, retried=0)

    def idle(self) -> bool:
        """Nothing scheduled and nothing being posted (tests wait for this)."""
        with self._wake:
            return not self._due and not self._busy

    def _push(self, at: float, steps: list[Step], generation: int) -> None:
        with self._wake:
            if generation != self._generation or self._stopping:
                return
            heapq.heappush(self._due, _Due(at, next(self._seq), steps, generation))
            self._wake.notify()

    def _work(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._due or self._due[0].at > time.monotonic()):
                    self._wake.wait(self._due[0].at - time.monotonic() if self._due else None)
                if self._stopping:
                    return
                due = heapq.heappop(self._due)
                self._busy += 1
            try:
                self._post_first(due.steps, due.generation)
            finally:
                with self._wake:
                    self._busy -= 1

    def _post_first(self, steps: list[Step], generation: int) -> None:
        step = steps[0]
        step.attempts += 1
        status = self._post(step.body)
        if status == 200:
            self._count("posted")
        elif step.attempts <= len(RETRY_DELAYS_S):
            self._count("retried")
            self._push(time.monotonic() + RETRY_DELAYS_S[step.attempts - 1], steps, generation)
            return
        else:
            self._count("failed")
            log.warning("status webhook (%s) not accepted after %d attempts (last answer: %s)", step.status, step.attempts, status)
        rest = steps[1:]
        if rest:
            self._push(time.monotonic() + rest[0].delay_s, rest, generation)

    def _post(self, body: bytes) -> int | str:
        request = urllib.request.Request(
            self.webhook_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.app_secret), "User-Agent": "facebookexternalua"},
        )
        try:
            with urllib.request.urlopen(request, timeout=POST_TIMEOUT_S) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError as error:  # refused, reset, timed out
            return type(error).__name__

    def _count(self, name: str) -> None:
        with self._wake:
            self.counts[name] += 1
