"""Sending through local mode: pacing against the Meta sandbox's limits.

2,000 template messages to 200 customers on a coexistence number (20 msg/s) and on a regular one
(80 msg/s), then a burst of 10 to one customer. Reported: achieved / configured rate, the 130429
and 131056 errors the sandbox saw (target 0), and the time from the API's 202 to the Cloud API call.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.harness import API_TOKEN, start_local_mode

WABA = "102290129340398"
NUMBERS = {"coexistence": ("106540352242922", "15550783881", 20), "regular": ("106540352242923", "15550783882", 80)}
RECIPIENTS = int(os.environ.get("BENCH_RECIPIENTS", 200))
PER_RECIPIENT = int(os.environ.get("BENCH_PER_RECIPIENT", 10))
BACKLOG = 40  # messages accepted but not yet sent, at most
TEMPLATE = {"type": "template", "template": {"name": "appointment_reminder", "language": "en_US", "components": [
    {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "Tuesday 10:00"}]}]}}


def _history_seed(number: str, display: str, customers: list[str]) -> bytes:
    """Chats to send to, created the way a coexistence onboarding creates them: imported history."""
    threads = [{"id": c, "messages": [{"from": c, "id": f"wamid.seed-{uuid.uuid4().hex}", "timestamp": str(int(time.time()) - 90_000),
                                       "type": "text", "text": {"body": "hello"}, "history_context": {"status": "READ"}}]} for c in customers]
    value = {"messaging_product": "whatsapp", "metadata": {"display_phone_number": display, "phone_number_id": number},
             "history": [{"metadata": {"phase": 0, "chunk_order": 1, "progress": 100}, "threads": threads}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "history", "value": value}]}]}).encode()


def _post(local, chat_id: str, key: str) -> tuple[str, float]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json", "Idempotency-Key": key}
    reply = local.request("POST", f"/api/chats/{chat_id}/messages", json.dumps(TEMPLATE).encode(), headers)
    assert reply.status == 202, reply.body
    return reply.json()["id"], time.time()


def _wamids(local, chat_ids: list[str]) -> dict[str, str]:
    found = {}
    for chat_id in chat_ids:
        items = local.api_get(f"/chats/{chat_id}/messages?limit=200").json()["items"]
        found.update({m["id"]: m["wamid"] for m in items if m["source"] == "agent" and m.get("wamid")})
    return found


def _run(local, number: str, display: str, customers: list[str], per_recipient: int) -> dict:
    assert local.post_webhook(_history_seed(number, display, customers)).status == 200
    found: dict[str, str] = {}  # customer -> its chat id (opaque: looked up by phone number)

    def all_imported() -> bool:
        # The history import writes its threads in parallel: wait for every chat.
        found.update({c: chat for c in customers if c not in found and (chat := local.chat_id_of(number, c))})
        return len(found) == len(customers)

    _wait(all_imported, 120)
    chat_ids = [found[c] for c in customers]
    local.sandbox("POST", "/_sandbox/reset")
    # Sending alone: status webhooks would make the emulator ingest three more records per message.
    local.sandbox("POST", "/_sandbox/faults", {"statuses": False})
    jobs = [(chat_id, f"{chat_id}-{i}") for i in range(per_recipient) for chat_id in chat_ids]
    total = len(jobs)
    accepted: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for start in range(0, total, BACKLOG):
            # Keep the backlog bounded: the emulator's FIFO queue costs O(queued messages) per call,
            # which real SQS does not, and would otherwise dominate what is measured.
            _wait(lambda: local.sandbox("GET", "/_sandbox/stats").json()["accepted"] >= start - BACKLOG, 600, poll_s=0.1)
            accepted.update(pool.map(lambda job: _post(local, *job), jobs[start : start + BACKLOG]))
    _wait(lambda: local.sandbox("GET", "/_sandbox/stats").json()["accepted"] >= total, 600)
    stats = local.sandbox("GET", "/_sandbox/stats").json()
    calls = {m["id"]: m["received_at"] for m in local.sandbox("GET", "/_sandbox/messages").json()["messages"] if m["phone_number_id"] == number}
    wamids = _wamids(local, chat_ids)
    latencies = sorted(calls[w] - accepted[i] for i, w in wamids.items() if w in calls and i in accepted)
    times = sorted(calls.values())
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "messages": total,
        "rate": (len(times) - 1) / span if span else float("inf"),
        "errors_130429": stats["errors"].get("130429", 0),
        "errors_131056": stats["errors"].get("131056", 0),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * (len(latencies) - 1)))],
    }


def _wait(predicate, timeout: float, poll_s: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("local mode did not get there in time")
        time.sleep(poll_s)


def measure() -> list[tuple[str, str]]:
    rows = []
    with start_local_mode() as local:
        for label, (number, display, configured) in NUMBERS.items():
            customers = [f"4477{label[0] == 'c' and 1 or 2}{i:07d}" for i in range(RECIPIENTS)]
            result = _run(local, number, display, customers, PER_RECIPIENT)
            rows += [
                (f"send {result['messages']} to {RECIPIENTS} customers, {label} number: achieved / configured rate",
                 f"{result['rate']:.1f} / {configured} msg/s ({result['rate'] / configured:.2f})"),
                (f"  … 130429 / 131056 errors seen by the sandbox", f"{result['errors_130429']} / {result['errors_131056']}"),
                (f"  … API accept → Cloud API call, p50 / p99", f"{result['p50'] * 1000:.0f} / {result['p99'] * 1000:.0f} ms"),
            ]
        number, display, _ = NUMBERS["coexistence"]
        burst = _run(local, number, display, ["447799999999"], 10)
        rows += [
            ("burst of 10 to one customer: accept → Cloud API call, p50 / p99", f"{burst['p50'] * 1000:.0f} / {burst['p99'] * 1000:.0f} ms"),
            ("  … 130429 / 131056 errors seen by the sandbox", f"{burst['errors_130429']} / {burst['errors_131056']}"),
        ]
    return rows
