"""A number's incoming customer messages, counted in its throughput bucket.

Meta counts a number's incoming and outgoing messages together against its throughput (a
coexistence number's 20 msg/s). Ingest counts each new customer message as a slot of the number's
bucket taken at once, without waiting (it cannot refuse what has already arrived): the sends after
it take later slots, so a number receiving 8 msg/s sends at most the rest of its rate
(`python -m benchmarks.pacing`). One conditional write of the bucket per number of a webhook.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

from coexist.outbound.number_settings import NumberSettings
from coexist.store.throttle import Throttle, number_bucket


class InboundCount:
    def __init__(self, throttle: Throttle, number_settings: Callable[[str], NumberSettings]):
        self.throttle = throttle
        self.number_settings = number_settings

    def count(self, phone_number_ids: Iterable[str]) -> None:
        """One incoming message per id given (a number repeats once per message)."""
        for number, messages in Counter(phone_number_ids).items():
            self.throttle.count(number_bucket(number), self.number_settings(number).number_rate, messages)
