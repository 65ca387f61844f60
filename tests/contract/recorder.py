"""Record every AWS call each Coexist function makes, for the IAM contract test.

How a call is attributed to a function: every `functions.<name>.handler` module is wrapped as it is
imported (a meta-path finder), so that its `lambda_handler` runs with a context variable naming the
function. That covers every way the suites run handlers: tests calling them directly, local mode's
`LocalFunction`, moto's Step Functions invoking the conversation function. Work a handler hands to
a thread pool carries the context with it (`ThreadPoolExecutor.submit` is patched to copy it), as
the function's own threads are the function in Lambda. Calls made outside any handler (test setup,
the local poller, which stands for Lambda's event source mapping) are not the functions' and are
not recorded.

How a call is seen: a botocore `before-parameter-build` handler, registered as a built-in handler
so that every session created afterwards carries it (boto3's default one, the DynamoDB resources'
own sessions, moto's). It derives the IAM action and resource ARNs from the operation and its
parameters (`calls.py`).

Where calls go: each process appends each distinct call once, as a JSON line, to its own file in
the directory named by `COEXIST_AWS_CALL_LOG`; local mode in a subprocess (the e2e suite) records
to the same directory. Lines are written as they happen, so a process that is killed loses nothing
recorded so far. The contract test reads the directory when the suites are done.
"""

from __future__ import annotations

import contextvars
import functools
import importlib.abc
import importlib.machinery
import json
import os
import re
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.contract.calls import bindings_for, required_calls

LOG_ENV = "COEXIST_AWS_CALL_LOG"
HANDLER_MODULE = re.compile(r"functions\.(\w+)\.handler")

current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("coexist_function", default=None)

_seen: set[str] = set()
_writing = threading.Lock()
_installed = False


def _attributed(function: str, handler):
    @functools.wraps(handler)
    def lambda_handler(event, context):
        token = current_function.set(function)
        try:
            return handler(event, context)
        finally:
            current_function.reset(token)

    lambda_handler.__coexist_function__ = function
    return lambda_handler


class _AttributingLoader(importlib.abc.Loader):
    def __init__(self, loader, function: str):
        self._loader, self._function = loader, function

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        handler = getattr(module, "lambda_handler", None)
        if callable(handler) and not hasattr(handler, "__coexist_function__"):
            module.lambda_handler = _attributed(self._function, handler)


class _AttributingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        match = HANDLER_MODULE.fullmatch(name)
        if not match:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _AttributingLoader(spec.loader, match.group(1))
        return spec


def _submit_in_context(original):
    @functools.wraps(original)
    def submit(self, fn, /, *args, **kwargs):
        if current_function.get() is None:
            return original(self, fn, *args, **kwargs)
        return original(self, contextvars.copy_context().run, fn, *args, **kwargs)

    return submit


def _on_call(params, model, **_):
    function = current_function.get()
    if function is None:
        return
    try:
        calls = required_calls(model, params)
    except Exception as error:  # never break the call itself; make the contract test fail instead
        prefix = model.service_model.service_name
        calls = [{"action": f"{prefix}:{model.name}", "resource": f"(not derived: {type(error).__name__})", "context": {}}]
    for call in calls:
        _write({"function": function, **call, "bindings": bindings_for(call["resource"], os.environ)})


def _write(record: dict) -> None:
    line = json.dumps(record, sort_keys=True)
    with _writing:
        if line in _seen:
            return
        _seen.add(line)
        directory = os.environ.get(LOG_ENV)
        if directory:
            with open(Path(directory) / f"{os.getpid()}.jsonl", "a") as out:
                out.write(line + "\n")


def install() -> None:
    """Start recording in this process (idempotent). Must run before any handler module is
    imported and before boto3 creates its default session."""
    global _installed
    if _installed:
        return
    _installed = True
    from botocore import handlers

    already = [name for name in sys.modules if HANDLER_MODULE.fullmatch(name)]
    if already:
        raise RuntimeError(f"handlers imported before the call recorder: {already}")
    sys.meta_path.insert(0, _AttributingFinder())
    ThreadPoolExecutor.submit = _submit_in_context(ThreadPoolExecutor.submit)
    handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _on_call))
    import boto3

    if boto3.DEFAULT_SESSION is not None:  # created before us: give it the handler too
        boto3.DEFAULT_SESSION._session.register("before-parameter-build", _on_call)


def read(directory: Path) -> list[dict]:
    """Every distinct call recorded in `directory` by any process."""
    lines = set()
    for path in sorted(directory.glob("*.jsonl")):
        lines |= {line for line in path.read_text().splitlines() if line.strip()}
    return [json.loads(line) for line in sorted(lines)]
