"""AWS clients, created on first use (never at import) and reused across invocations."""

from __future__ import annotations

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

_local = threading.local()
_generation = 0


@lru_cache(maxsize=None)
def client(service: str):
    """Low-level clients are thread-safe: one per process."""
    return boto3.client(service, config=_CONFIG)


def _thread_dynamodb():
    """boto3 resources are not thread-safe, so each thread builds its own from its own session."""
    if getattr(_local, "generation", None) != _generation:
        _local.dynamodb = boto3.session.Session().resource("dynamodb", config=_CONFIG)
        _local.generation = _generation
    return _local.dynamodb


class ThreadLocalTable:
    """A DynamoDB Table usable from any thread (ingest writes in parallel)."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attribute: str):
        tables = _local.__dict__.setdefault("tables", {})
        key = (self.name, _generation)
        if key not in tables:
            tables[key] = _thread_dynamodb().Table(self.name)
        return getattr(tables[key], attribute)


@lru_cache(maxsize=None)
def table(name: str) -> ThreadLocalTable:
    return ThreadLocalTable(name)


def reset() -> None:
    """Forget cached clients and resources (tests and local mode switch emulated accounts)."""
    global _generation
    _generation += 1
    client.cache_clear()
    table.cache_clear()
