"""The Lambda functions as local mode runs them: same handler modules, a fake context, one at a time.

Each function is imported after the environment is set (handlers read settings at import or first
call, as in Lambda). Invocations are serialised process-wide: Lambda never runs two invocations in
one process, while here all functions share one, and process-wide state would race — Powertools
`Metrics` keep their metric set in class attributes shared by every function, and the layer caches
boto3 clients and tables. The cost is that a function must not wait synchronously for another one
invoked from a different thread (e.g. an HTTP call back into the gateway): that would deadlock.
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
INVOCATION_LOCK = threading.RLock()  # re-entrant: a handler may call another function in its own thread


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
    _lock: threading.RLock = field(default_factory=lambda: INVOCATION_LOCK)

    @classmethod
    def of(cls, name: str, handler: Callable[[dict, Any], Any], timeout_s: float) -> "LocalFunction":
        """A function backed by a callable (tests of the runtime use stubs this way)."""
        return cls(name=name, module=getattr(handler, "__module__", "?"), timeout_s=timeout_s, _handler=handler)

    def load(self) -> bool:
        """Import the handler; on failure keep the traceback and report the function as unavailable."""
        if self._handler is not None:
            return True
        try:
            self._handler = getattr(importlib.import_module(self.module), self.attribute)
            return True
        except Exception:  # an import error takes down one function, as in Lambda, not local mode
            self._import_error = traceback.format_exc()
            print(f"[local] {self.name}: cannot import {self.module}.{self.attribute}:\n{self._import_error}", file=sys.stderr)
            return False

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
