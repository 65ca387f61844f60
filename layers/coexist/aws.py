"""AWS clients, created on first use (never at import) and reused across invocations."""

from __future__ import annotations

import queue
import threading
from functools import lru_cache

import boto3
from botocore.config import Config

# Short timeouts and SDK-level retries with backoff: a slow dependency fails the record fast and
# SQS redelivers it, instead of the whole batch running into the function timeout.
_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 4, "mode": "standard"},
    tcp_keepalive=True,
    max_pool_connections=16,
)

_generation = 0
_resources: "queue.SimpleQueue" = queue.SimpleQueue()
_creating = threading.Lock()


@lru_cache(maxsize=None)
def client(service: str):
    """Low-level clients are thread-safe: one per process."""
    return boto3.client(service, config=_CONFIG)


def _checkout():
    """A DynamoDB resource no other thread is using (boto3 resources are not thread-safe).

    Resources are pooled rather than kept per thread: local mode serves every HTTP request on a new
    thread, and building a session per request would cost more than the request itself.
    """
    while True:
        try:
            generation, resource = _resources.get_nowait()
        except queue.Empty:
            with _creating:  # building sessions concurrently is not thread-safe either
                return _generation, boto3.session.Session().resource("dynamodb", config=_CONFIG)
        if generation == _generation:
            return generation, resource


class SharedTable:
    """A DynamoDB Table usable from any thread (ingest and the sender write in parallel): each call
    borrows a resource from the pool for its duration."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attribute: str):
        generation, resource = _checkout()
        value = getattr(resource.Table(self.name), attribute)
        if not callable(value) or attribute == "batch_writer":
            # `meta` (its client is thread-safe) and the batch writer (it only uses that client).
            _resources.put((generation, resource))
            return value

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            finally:
                _resources.put((generation, resource))

        return call


@lru_cache(maxsize=None)
def table(name: str) -> SharedTable:
    return SharedTable(name)


def reset() -> None:
    """Forget cached clients and resources (tests and local mode switch emulated accounts)."""
    global _generation
    _generation += 1
    client.cache_clear()
    table.cache_clear()
