"""Pacing at scale, without the emulator's ceiling: `python -m benchmarks.pacing` (also part of `make bench`).

The real `coexist.store.throttle.Throttle` (and so the real GCRA of `coexist.domain.pacing`) runs in
many simulated sender instances against an in-memory bucket table with DynamoDB's conditional-write
semantics. Time is simulated (a discrete-event clock per sender, the earliest sender always moves
next), so the figures are repeatable and a thousand numbers at once take seconds, not hours:

- every call to the table takes 5–20 ms each way (seeded jitter), and the condition is checked when
  the request arrives, as DynamoDB does;
- a sender instance works on ten message groups at once (threads sharing its `Throttle`, as the
  sender function does); each takes the next slot of the message's number, then, as the sender
  does, waits for it when it is at most 2 s away, or keeps it on the message and lets the message
  come back at that moment (the thread is free meanwhile); the request reaches Meta 40–60 ms after
  the slot (20 ms of jitter on arrival) and the thread is busy until the answer comes back, 80–250 ms
  after the call;
- Meta counts what *arrives* in any rolling second: that is what must never exceed the limit.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from coexist.domain.pacing import Rate
from coexist.outbound.number_settings import HEADROOM, PAIR_BURST, PAIR_PERIOD_S
from coexist.outbound.sender import MAX_INLINE_WAIT_S, MAX_SLOT_AHEAD_S
from coexist.store.throttle import CIRCUIT_CLOSED, Throttle



class _Clock:
    def __init__(self, now: float = 0.0):
        self.now = now


class _Running:
    """The simulated clock of whichever worker is running: what `Throttle` reads as time.time()."""

    def __init__(self):
        self.worker = _Clock()

    def __call__(self) -> float:
        return self.worker.now


class BucketTable:
    """The throttle table's `put_item` with DynamoDB's semantics: the condition is evaluated
    atomically against the item as it is when the request arrives; a failed condition returns the
    item (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""

    def __init__(self, rng: random.Random, latency_s: tuple[float, float]):
        self.items: dict[str, dict] = {}
        self.rng = rng
        self.latency_s = latency_s
        self.calls = 0
        self.refused = 0
        self.caller: _Clock | None = None  # the worker whose step is running

    def _travel(self) -> None:
        self.caller.now += self.rng.uniform(*self.latency_s)

    def put_item(self, Item, ConditionExpression, ExpressionAttributeValues, ReturnValuesOnConditionCheckFailure=None):
        self._travel()
        self.calls += 1
        old = self.items.get(Item["bucket_id"])
        condition, closed = ConditionExpression.removesuffix(CIRCUIT_CLOSED), ConditionExpression.endswith(CIRCUIT_CLOSED)
        circuit_ok = not closed or old is None or old.get("open_until", 0) <= ExpressionAttributeValues[":now_s"]
        if condition == "tat = :seen":
            ok = circuit_ok and old is not None and old["tat"] == ExpressionAttributeValues[":seen"]
        elif condition == "(attribute_not_exists(tat) OR tat <= :now)":
            ok = circuit_ok and (old is None or old["tat"] <= ExpressionAttributeValues[":now"])
        else:  # pragma: no cover - a new condition in Throttle must be taught here
            raise AssertionError(f"unknown condition {ConditionExpression!r}")
        if ok:
            self.items[Item["bucket_id"]] = dict(Item)
        self._travel()
        if not ok:
            self.refused += 1
            returned = {"tat": {"N": str(old["tat"])}} if old else {}
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}, "Item": returned}, "PutItem")


    def update_item(self, Key, UpdateExpression, ConditionExpression, ExpressionAttributeValues, ReturnValues=None,
                    ReturnValuesOnConditionCheckFailure=None):
        """The two updates `Throttle.count` makes: a booked bucket moved on, an idle one restarted."""
        self._travel()
        self.calls += 1
        old = self.items.get(Key["bucket_id"])
        values = ExpressionAttributeValues
        if ConditionExpression == "tat >= :now":
            ok = old is not None and old["tat"] >= values[":now"]
            new = {**(old or {}), "tat": (old or {}).get("tat", 0) + values[":add"]}
        elif ConditionExpression == "attribute_not_exists(tat) OR tat < :now":
            ok = old is None or old["tat"] < values[":now"]
            new = {**(old or {}), "bucket_id": Key["bucket_id"], "tat": values[":new"]}
        else:  # pragma: no cover - a new condition in Throttle must be taught here
            raise AssertionError(f"unknown condition {ConditionExpression!r}")
        if ok:
            self.items[Key["bucket_id"]] = new
        self._travel()
        if not ok:
            self.refused += 1
            returned = {"tat": {"N": str(old["tat"])}} if old else {}
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException"}, "Item": returned}, "UpdateItem")
        return {"Attributes": {"tat": new["tat"]}}


@dataclass
class Outcome:
    numbers: int
    instances: int
    limit_mps: float
    seconds: float
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    table_calls: int = 0
    table_refusals: int = 0
    late_s: float = 0.0  # the latest a send left after its slot's moment
    waits: list[float] = field(default_factory=list)  # from asking for a slot to sending
    inbound: dict[str, list[float]] = field(default_factory=dict)  # customer messages Meta counted, per number

    def _rates(self) -> list[float]:
        """Sends per second of each number in the steady state (the first and last second left out)."""
        return [len([t for t in times if 1.0 <= t < self.seconds - 1.0]) / (self.seconds - 2.0)
                for times in self.arrivals.values()]

    def achieved_ratio(self) -> float:
        """The least served number's rate over the limit."""
        return min(self._rates()) / self.limit_mps

    def mean_ratio(self) -> float:
        rates = self._rates()
        return sum(rates) / len(rates) / self.limit_mps

    def busiest_second(self, sends: bool = True, inbound: bool = True) -> int:
        """The most messages Meta counts (sends arriving, and incoming messages) in any rolling
        one-second window, over every number."""
        worst = 0
        for number in self.arrivals:
            times = sorted((self.arrivals[number] if sends else []) + (self.inbound.get(number, []) if inbound else []))
            start = 0
            for end, t in enumerate(times):
                while times[start] <= t - 1.0:
                    start += 1
                worst = max(worst, end - start + 1)
        return worst


def simulate(numbers: int, limit_mps: float, instances: int, seconds: float, threads: int = 10, seed: int = 7,
             table_latency_s=(0.005, 0.020), arrival_s=(0.040, 0.060), answer_s=(0.080, 0.250),
             inbound_mps: float = 0.0, offered_mps: float | None = None, max_ahead_s: float = MAX_SLOT_AHEAD_S) -> Outcome:
    """`instances` sender instances of `threads` workers share the buckets of `numbers` numbers,
    each with a backlog that never runs dry, paced at the configured rate (the limit less the
    headroom). As the sender does, a worker waits the slot's `wait_s` from when the write returned,
    so that it sends at the slot's moment (late only when the write came back after it). Each
    number also receives `inbound_mps` customer messages a second (at random moments), which
    ingest counts in its bucket as `coexist.outbound.inbound_count` does: Meta counts them with the
    sends. With `offered_mps`, each number's messages to send come in at that rate instead of all
    being there at the start (a backlog there at once books every slot of the run before the first
    customer writes).
    `max_ahead_s`: how far ahead a send may book (a campaign's message: 0.25 s, then it comes back)."""
    rng = random.Random(seed)
    table = BucketTable(rng, table_latency_s)
    running = _Running()
    rate = Rate(per_second=limit_mps * HEADROOM, burst=1)
    throttles = [Throttle(table, clock=running) for _ in range(instances)]  # one view of the buckets per instance
    workers = [(_Clock(rng.uniform(0, 0.05)), throttles[i // threads]) for i in range(instances * threads)]
    outcome = Outcome(numbers, instances, limit_mps, seconds, {f"n{i}": [] for i in range(numbers)})
    queue = [(clock.now, i) for i, (clock, _) in enumerate(workers)]
    incoming = _incoming(rng, numbers, inbound_mps, seconds)  # (moment, number), in time order
    ingest, ingest_clock = Throttle(table, clock=running), _Clock()
    outcome.inbound = {f"n{i}": [] for i in range(numbers)}
    offered = {f"n{i}": 0 for i in range(numbers)}  # messages to send taken so far, per number
    queue += [(at, -1 - j) for j, (at, _) in enumerate(incoming)]
    heapq.heapify(queue)
    turn = 0
    while queue:
        now, index = heapq.heappop(queue)
        if now >= seconds:
            continue
        if index < 0:  # a customer's message reaches Meta (counted there now) and then ingest
            number = incoming[-1 - index][1]
            outcome.inbound[number].append(now)
            ingest_clock.now = now + rng.uniform(*arrival_s)  # the webhook's way to ingest
            running.worker = table.caller = ingest_clock
            ingest.count(f"number#{number}", rate)
            continue
        clock, throttle = workers[index]
        running.worker = table.caller = clock
        number = f"n{(index + turn) % numbers}"  # every worker serves every number's backlog
        turn += 1
        if offered_mps is not None:
            if int(clock.now * offered_mps) <= offered[number]:  # none waiting: until the next comes in
                clock.now = (offered[number] + 1) / offered_mps + 1e-9
                heapq.heappush(queue, (clock.now, index))
                continue
            offered[number] += 1
        asked = clock.now
        slot = throttle.take(f"number#{number}", rate, max_wait_s=max_ahead_s)
        if not slot.granted:  # outrun by other senders too often: the message comes back shortly
            clock.now += slot.wait_s
            heapq.heappush(queue, (clock.now, index))
            continue
        if slot.at_s >= seconds:
            continue  # the backlog this run sends is spoken for
        if slot.at_s - clock.now > MAX_INLINE_WAIT_S:
            # Kept on the message, which comes back at its slot and is sent then by a free thread.
            outcome.arrivals[number].append(slot.at_s + rng.uniform(*arrival_s))
            outcome.waits.append(slot.at_s - asked)
            heapq.heappush(queue, (clock.now, index))
            continue
        clock.now += slot.wait_s
        outcome.late_s = max(outcome.late_s, clock.now - slot.at_s)
        outcome.waits.append(clock.now - asked)
        outcome.arrivals[number].append(clock.now + rng.uniform(*arrival_s))
        clock.now += rng.uniform(*answer_s)  # busy until Meta answers
        heapq.heappush(queue, (clock.now, index))
    outcome.table_calls, outcome.table_refusals = table.calls, table.refused
    return outcome


def _incoming(rng: random.Random, numbers: int, per_second: float, seconds: float) -> list[tuple[float, str]]:
    """Customer messages arriving at random (a Poisson process) at `per_second` for each number."""
    found = []
    for i in range(numbers if per_second > 0 else 0):
        at = rng.expovariate(per_second)
        while at < seconds:
            found.append((at, f"n{i}"))
            at += rng.expovariate(per_second)
    return sorted(found)


def pair_burst(messages: int = 60, senders: int = 10, seed: int = 11) -> tuple[int, float]:
    """One customer sent `messages` at once by `senders` instances: how many went in the first
    second, and the smallest gap after the burst (Meta's pair limit: a burst, then one per 6 s)."""
    rng = random.Random(seed)
    table = BucketTable(rng, (0.005, 0.020))
    running = _Running()
    rate = Rate(per_second=1 / PAIR_PERIOD_S, burst=PAIR_BURST)
    clocks = [_Clock() for _ in range(senders)]
    throttles = [Throttle(table, clock=running) for _ in range(senders)]
    sent: list[float] = []
    pending = messages
    queue = [(0.0, i) for i in range(senders)]
    while queue and pending:
        now, index = heapq.heappop(queue)
        running.worker = table.caller = clocks[index]
        slot = throttles[index].take("pair#customer", rate, max_wait_s=60.0)
        if slot.granted:
            sent.append(max(clocks[index].now, slot.at_s))
            pending -= 1
            clocks[index].now = sent[-1]
        else:
            clocks[index].now += slot.wait_s
        heapq.heappush(queue, (clocks[index].now, index))
    sent.sort()
    first_second = sum(1 for t in sent if t < 1.0)
    after = sent[PAIR_BURST:]
    gap = min((b - a for a, b in zip(after, after[1:])), default=float("inf"))
    return first_second, gap


SCENARIOS = (
    # (numbers, limit msg/s, sender instances of ten threads, simulated seconds, how workers wait)
    (1, 20, 10, 30, {}),
    (1, 20, 50, 30, {}),
    (1, 80, 10, 30, {}),
    (1, 80, 50, 30, {}),
    (1000, 20, 2000, 20, {}),
    # The same with enough threads that none of a number's slots waits for one, and at 80 msg/s.
    (1000, 20, 4000, 20, {}),
    (1000, 80, 16000, 5, {}),
    # A coexistence number receiving 8 msg/s: a campaign's sends (never booked more than 0.25 s
    # ahead), then conversations with more to send than the number can (booked ever further ahead).
    (1, 20, 10, 30, {"inbound_mps": 8, "max_ahead_s": 0.25}),
    (1, 20, 10, 30, {"inbound_mps": 8, "offered_mps": 25}),
)


def run() -> list[tuple[str, str]]:
    rows = []
    for numbers, limit, instances, seconds, how in SCENARIOS:
        outcome = simulate(numbers, limit, instances, seconds, **how)
        sends = sum(len(a) for a in outcome.arrivals.values())
        waits = sorted(outcome.waits)
        name = f"{numbers} number(s) at {limit} msg/s, {instances} sender instances × 10 threads"
        if how.get("inbound_mps"):
            name += f", receiving {how['inbound_mps']:g} msg/s" + (" (campaign sends, ≤ 0.25 s ahead)" if how.get("max_ahead_s") else
                                                                   f" ({how.get('offered_mps')} msg/s to send, booked ahead)")
            incoming = sum(len(t) for t in outcome.inbound.values()) / seconds
            rows.append((name, f"sends {outcome.mean_ratio() * limit:.1f} msg/s beside {incoming:.1f} incoming · busiest second: "
                               f"{outcome.busiest_second(inbound=False)} sends, {outcome.busiest_second(sends=False)} incoming, "
                               f"{outcome.busiest_second()} both / {limit}"))
            continue
        rows.append((
            name,
            f"{outcome.mean_ratio():.3f} of the limit (≥ 0.95; least served number {outcome.achieved_ratio():.3f}) · busiest second {outcome.busiest_second()} / {limit} · "
            f"{outcome.table_calls / max(1, sends):.2f} bucket writes per send · wait p50 {waits[len(waits) // 2] * 1000:.0f} ms",
        ))
    first, gap = pair_burst()
    rows.append(("one customer, 60 messages at once, 10 senders",
                 f"{first} in the first second (burst {PAIR_BURST}), then at least {gap:.2f} s apart (period {PAIR_PERIOD_S:g} s)"))
    return rows


if __name__ == "__main__":
    for name, result in run():
        print(f"| {name} | {result} |")
