"""What this process already knows to be in a table, so that a write that would change nothing is
not sent again on every webhook. Only facts that never move backwards are kept here."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


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
