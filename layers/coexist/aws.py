"""AWS clients, created on first use (never at import) and reused across invocations."""

from __future__ import annotations

import queue
import threading
from functools import lru_cache

import botocore.session
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


@lru_cache(maxsize=1)
def _session():
    """The session low-level clients are made from: botocore's own, so a function that needs no
    DynamoDB resource never imports boto3 (nor the S3 transfer manager it loads)."""
    return botocore.session.get_session()


def _session_sharing_models():
    """A botocore session of its own (a resource is used by one thread at a time) that reads AWS's
    models through the process's loader: each new session would otherwise parse the endpoint list
    and the DynamoDB models again, about 150 ms of CPU per resource, and ingest builds up to eight."""
    session = botocore.session.get_session()
    session.register_component("data_loader", _session().get_component("data_loader"))
    return session


def _new_client(service: str, **kwargs):
    with _creating:  # a session is not safe to build clients from concurrently
        return _session().create_client(service, **kwargs)


@lru_cache(maxsize=None)
def client(service: str):
    """Low-level clients are thread-safe: one per process."""
    return _new_client(service, config=_CONFIG)


class ClientOnFirstCall:
    """A low-level client made when first called, for a service a function seldom needs (building
    one parses its service model: about 70 ms for S3 at a cold start that may never use it)."""

    def __init__(self, service: str, endpoint_url: str | None = None):
        self.service = service
        self.endpoint_url = endpoint_url  # a service reached at an endpoint of its own (endpoint_client)

    def __getattr__(self, attribute: str):
        made = endpoint_client(self.service, self.endpoint_url) if self.endpoint_url else client(self.service)
        return getattr(made, attribute)


@lru_cache(maxsize=None)
def single_attempt_client(service: str, connect_timeout: float, read_timeout: float):
    """A client that makes each call once: for calls that must not be repeated behind the caller's
    back, such as sending a WhatsApp message (a retried send can reach the customer twice)."""
    config = _CONFIG.merge(
        Config(connect_timeout=connect_timeout, read_timeout=read_timeout, retries={"total_max_attempts": 1, "mode": "standard"})
    )
    return _new_client(service, config=config)


class _PooledResource:
    """A DynamoDB resource and the Table objects made from it: boto3 builds a Table's class anew on
    every `resource.Table(name)`, which costs more than the DynamoDB call itself, so each is made once."""

    def __init__(self, generation: int):
        self.generation = generation
        import boto3  # only functions that read or write tables pay for it

        with _creating:  # building sessions concurrently is not thread-safe
            self.resource = boto3.session.Session(botocore_session=_session_sharing_models()).resource("dynamodb", config=_CONFIG)
        self.tables: dict[str, object] = {}

    def table(self, name: str):
        found = self.tables.get(name)
        if found is None:
            found = self.tables[name] = self.resource.Table(name)
        return found


def _checkout() -> _PooledResource:
    """A DynamoDB resource no other thread is using (boto3 resources are not thread-safe).

    Resources are pooled rather than kept per thread: local mode serves every HTTP request on a new
    thread, and building a session per request would cost more than the request itself.
    """
    while True:
        try:
            pooled = _resources.get_nowait()
        except queue.Empty:
            return _PooledResource(_generation)
        if pooled.generation == _generation:
            return pooled


class SharedTable:
    """A DynamoDB Table usable from any thread (ingest and the sender write in parallel): each call
    borrows a resource from the pool for its duration."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attribute: str):
        pooled = _checkout()
        value = getattr(pooled.table(self.name), attribute)
        if not callable(value) or attribute == "batch_writer":
            # `meta` (its client is thread-safe) and the batch writer (it only uses that client).
            _resources.put(pooled)
            return value

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            finally:
                _resources.put(pooled)

        return call


@lru_cache(maxsize=None)
def endpoint_client(service: str, endpoint_url: str):
    """A client of a service reached at an endpoint of its own, such as a WebSocket API's
    management endpoint (`apigatewaymanagementapi`)."""
    return _new_client(service, endpoint_url=endpoint_url, config=_CONFIG)


@lru_cache(maxsize=None)
def table(name: str) -> SharedTable:
    return SharedTable(name)


def reset() -> None:
    """Forget cached clients and resources (tests and local mode switch emulated accounts)."""
    global _generation
    _generation += 1
    _session.cache_clear()
    client.cache_clear()
    single_attempt_client.cache_clear()
    endpoint_client.cache_clear()
    table.cache_clear()
