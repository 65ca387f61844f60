"""AWS clients, created on first use (never at import) and reused across invocations."""

from __future__ import annotations

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
)


@lru_cache(maxsize=None)
def client(service: str):
    return boto3.client(service, config=_CONFIG)


@lru_cache(maxsize=None)
def table(name: str):
    return boto3.resource("dynamodb", config=_CONFIG).Table(name)


def reset() -> None:
    """Forget cached clients (tests switch between emulated accounts)."""
    client.cache_clear()
    table.cache_clear()
