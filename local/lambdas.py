"""The Lambda functions as local mode runs them: same handler modules, a fake context, one
invocation at a time per function.

Each function is imported after the environment is set (handlers read settings at import or first
call, as in Lambda). In Lambda every function has its own processes; here they share one, so:

* Each function runs one invocation at a time (its own lock, like a reserved concurrency of 1),
  but different functions run in parallel. A process-wide lock would let the sender, which may
  wait for throughput tokens or hang on a slow Graph API call for seconds, stall the webhook and
  the API behind it; and the Meta sandbox's status webhooks arrive while a send is in flight.
* What the functions would otherwise share is separated or made safe:
  - Powertools `Metrics` keep their metric set in class attributes shared by every instance; a
    flush in one function while another adds a metric could fail with "dictionary changed size
    during iteration". At import, each function's `Metrics` get a store of their own
    (`_isolate_metrics`). If a future Powertools changes that shape, the function falls back to the
    process-wide `INVOCATION_LOCK`, shared with every other function that could not be isolated.
  - Powertools' REST resolvers keep the request being handled in a class attribute
    (`BaseRouter.current_event`) shared by every resolver in the process: the webhook's request
    arriving mid-way through an API request would replace the event the API reads its body and
    headers from. Functions whose module holds a resolver therefore share `RESOLVER_LOCK` (the
    process-wide lock).
  - AWS clients cached by the layer (`coexist.aws.client`) are thread-safe once built, but
    building them from one session concurrently is not: the layer builds them under a lock and
    local mode builds them before any thread starts (`runtime.prewarm_clients`). DynamoDB
    resources are per thread already.
* A function must still not wait synchronously for *itself* from another thread; the lock is
  re-entrant for a handler that calls its own function in its own thread.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from local.emulator import REGION

log = logging.getLogger("local")
ACCOUNT_ID = "123456789012"  # moto's default account
API_GATEWAY_TIMEOUT_S = 29  # API Gateway's integration limit caps the webhook and API functions
# For functions whose Powertools metric store could not be isolated (see the module docstring).
INVOCATION_LOCK = threading.RLock()
# Functions serving HTTP through a Powertools resolver (whose current event is process-wide) take
# the same lock: whatever Powertools keeps at class level is then touched by one of them at a time.
RESOLVER_LOCK = INVOCATION_LOCK


class FunctionUnavailable(RuntimeError):
    """The handler module could not be imported: Lambda would fail every invocation (Runtime.ImportModuleError)."""


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    timeout_s: float
    memory_limit_in_mb: int = 512  # not enforced locally
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/[$LATEST]{self.aws_request_id.replace('-', '')}"
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    name: str
    module: str  # e.g. "functions.webhook.handler"
    timeout_s: float
    attribute: str = "lambda_handler"
    _handler: Callable[[dict, Any], Any] | None = None
    _import_error: str | None = None
    _lock: threading.RLock = field(default_factory=threading.RLock)  # one invocation at a time, per function

    @classmethod
    def of(cls, name: str, handler: Callable[[dict, Any], Any], timeout_s: float) -> "LocalFunction":
        """A function backed by a callable (tests of the runtime use stubs this way)."""
        return cls(name=name, module=getattr(handler, "__module__", "?"), timeout_s=timeout_s, _handler=handler)

    def load(self) -> bool:
        """Import the handler; on failure keep the traceback and report the function as unavailable."""
        if self._handler is not None:
            return True
        try:
            module = importlib.import_module(self.module)
            self._handler = getattr(module, self.attribute)
        except Exception:  # an import error takes down one function, as in Lambda, not local mode
            self._import_error = traceback.format_exc()
            print(f"[local] {self.name}: cannot import {self.module}.{self.attribute}:\n{self._import_error}", file=sys.stderr)
            return False
        if not _isolate_metrics(module):
            log.warning("%s: Powertools metrics could not be given their own store; it runs under the process-wide lock", self.name)
            self._lock = INVOCATION_LOCK
        elif _serves_http(module):
            self._lock = RESOLVER_LOCK
        return True

    @property
    def available(self) -> bool:
        return self._handler is not None

    def invoke(self, event: dict) -> Any:
        if self._handler is None:
            raise FunctionUnavailable(f"{self.module}.{self.attribute} is not importable")
        context = LambdaContext(function_name=self.name, timeout_s=self.timeout_s)
        with self._lock:
            started = time.monotonic()
            try:
                return self._handler(event, context)
            finally:
                elapsed = time.monotonic() - started
                if elapsed > self.timeout_s:
                    # Not enforced (we cannot kill a thread), but a deployment would have timed out.
                    log.warning("%s ran %.1f s, over its %s s Lambda timeout", self.name, elapsed, self.timeout_s)


def _serves_http(module) -> bool:
    try:
        from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
    except ImportError:
        return False
    return any(isinstance(value, BaseRouter) for value in vars(module).values())


_METRIC_STORES = ("metric_set", "dimension_set", "metadata_set")


def _isolate_metrics(module) -> bool:
    """Give every Powertools `Metrics` object in the handler module a metric store of its own.

    `Metrics` and its EMF provider point at the same class-level dicts; repointing both at fresh
    dicts makes the function's metrics as separate as they are in their own Lambda process.
    Returns False when the objects do not have the expected shape (then the caller serialises).
    """
    try:
        from aws_lambda_powertools import Metrics
    except ImportError:
        return True
    for value in list(vars(module).values()):
        if not isinstance(value, Metrics):
            continue
        provider = getattr(value, "provider", None)
        if provider is None or not all(hasattr(value, n) and hasattr(provider, n) for n in (*_METRIC_STORES, "default_dimensions")):
            return False
        defaults = dict(value.default_dimensions)
        for name in _METRIC_STORES:
            # Dimensions start from the defaults only, never from another function's leftovers.
            store = {k: str(v) for k, v in defaults.items()} if name == "dimension_set" else {}
            setattr(value, name, store)
            setattr(provider, name, store)
        value.default_dimensions = provider.default_dimensions = defaults
    return True
