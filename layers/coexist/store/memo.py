"""What this process already knows of a table: facts that never move backwards (a write that
would change nothing is not sent again on every webhook), and what changes rarely (read again once
it is older than its time to live)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable


class BoundedMemo:
    """A thread-safe map that forgets its least recently used entries beyond `capacity`."""

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


class ReadAtMostEvery:
    """`read(key)`, remembered per key for `ttl_s` seconds of `clock`: what changes rarely (a
    number's settings, its account's state) is read at most once per `ttl_s` by this process."""

    def __init__(self, read: Callable[[Any], Any], ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.read = read
        self.ttl_s = ttl_s
        self.clock = clock
        self._read: dict[Any, tuple[float, Any]] = {}

    def __call__(self, key):
        now = self.clock()
        hit = self._read.get(key)
        if hit and now - hit[0] < self.ttl_s:
            return hit[1]
        value = self.read(key)
        self._read[key] = (now, value)
        return value
