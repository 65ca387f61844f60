"""The conversation state machine in the emulator: the real definition file, executed by moto,
with its Lambda tasks run by the in-process handler (moto cannot run Lambda code without Docker).

Used by local mode and by the tests, so the workflow runs the same way in both:

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        env = create_conversation_workflow(session, prefix)
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import traceback
import zipfile
from typing import Callable

from coexist import resources
from coexist.conversation.definition import render

log = logging.getLogger("local")
EXECUTE_STATE_MACHINES = {"stepfunctions": {"execute_state_machine": True}}

_handlers: dict[str, Callable | None] = {}  # None: retired with its account
_installed = threading.Lock()
_asynchronous: list[threading.Thread] = []  # the Event invocations under way (joined at shutdown)


class _Context:
    function_name = "conversation"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:conversation"
    aws_request_id = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def install_lambda_dispatch() -> None:
    """Route moto's Lambda Invoke to in-process handlers registered with `register_function`."""
    from moto.awslambda.models import LambdaBackend

    with _installed:
        if getattr(LambdaBackend.invoke, "_coexist_dispatch", False):
            return
        original = LambdaBackend.invoke

        def invoke(self, function_name, qualifier, body, headers, response_headers):
            name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
            if name not in _handlers:
                return original(self, function_name, qualifier, body, headers, response_headers)
            handler = _handlers[name] or _retired
            event = json.loads(body or b"{}")
            if headers.get("X-Amz-Invocation-Type") == "Event":
                # Lambda queues an asynchronous invocation and answers 202 at once; the caller
                # (a bot turn started by BotLoop) must not wait for the function to run.
                worker = threading.Thread(target=_run_and_log, args=(name, handler, event), daemon=True, name=f"invoke-{name}")
                _asynchronous.append(worker)
                worker.start()
                return b""
            try:
                result = handler(event, _Context())
            except Exception as error:  # what Lambda reports for an unhandled error
                log.error("%s failed: %s", name, "".join(traceback.format_exception_only(error)).strip())
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
            return json.dumps(result).encode()

        invoke._coexist_dispatch = True
        LambdaBackend.invoke = invoke


def _run_and_log(name: str, handler: Callable, event: dict) -> None:
    try:
        handler(event, _Context())
    except Exception as error:  # Lambda would retry it twice, then drop it (or send it to a DLQ)
        log.error("%s failed (asynchronous invocation): %s", name, "".join(traceback.format_exception_only(error)).strip())


def install_heartbeats_during_the_invocation() -> None:
    """A task with a heartbeat takes its token's signals from the moment the task starts, in Step
    Functions. moto sets the heartbeat's wait up only once the invocation that started the task
    returns, and until then refuses a heartbeat (InvalidToken) and misses a success or failure,
    waiting for the heartbeat's timeout instead. The bot's first turn sends both while the workflow's
    invocation runs: a heartbeat before the wait is accepted (the wait's timer starts afresh
    anyway), and a wait set up after the outcome starts already notified."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    with _installed:
        if getattr(CallbackEndpoint.setup_heartbeat_endpoint, "_coexist_patched", False):
            return
        setup, heartbeat = CallbackEndpoint.setup_heartbeat_endpoint, CallbackEndpoint.notify_heartbeat

        def setup_heartbeat_endpoint(self, heartbeat_seconds: int):
            endpoint = setup(self, heartbeat_seconds)
            if self.get_outcome() is not None:
                endpoint.notify()
            return endpoint

        def notify_heartbeat(self) -> bool:
            return heartbeat(self) or self._heartbeat_endpoint is None

        setup_heartbeat_endpoint._coexist_patched = True
        CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint
        CallbackEndpoint.notify_heartbeat = notify_heartbeat


def register_function(name: str, handler: Callable) -> None:
    _handlers[name] = handler


def _retired(_event: dict, _context: object) -> dict:
    raise RuntimeError("this emulated account was torn down")


def stop_workflows(session, join_timeout_s: float = 10.0) -> None:
    """Stop every running execution and wait for moto's workers to leave.

    moto runs executions on daemon threads that outlive `mock_aws`; one left waiting on a timer
    would wake inside the next emulated account (same table names) and act on its chats. Retiring
    the handlers makes any further step fail instead of writing anywhere, stopping interrupts the
    Wait states, and releasing the task tokens ends the callbacks the executions park on (moto
    reports those as timed out, so they end FAILED rather than ABORTED).
    """
    from moto.stepfunctions.parser.utils import TMP_THREADS

    for name in _handlers:
        _handlers[name] = None
    sfn = session.client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        running = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING")
        for page in running:
            for execution in page["executions"]:
                _stop(sfn, execution["executionArn"])
    _release_parked_callbacks(session)
    deadline = time.monotonic() + join_timeout_s
    for worker in list(TMP_THREADS) + list(_asynchronous):
        worker.join(timeout=max(0.0, deadline - time.monotonic()))
    TMP_THREADS[:] = [worker for worker in TMP_THREADS if worker.is_alive()]
    _asynchronous[:] = [worker for worker in _asynchronous if worker.is_alive()]
    if TMP_THREADS:
        log.warning("%d workflow threads still running after shutdown", len(TMP_THREADS))


def _stop(sfn, execution_arn: str, attempts: int = 40) -> None:
    """Stop one execution. moto cannot stop an execution whose worker thread has not set itself up
    yet (an AttributeError from inside the emulator, for an execution started moments before): it
    is given a moment, as long as that takes."""
    for attempt in range(attempts):
        try:
            sfn.stop_execution(executionArn=execution_arn, cause="emulator shut down")
            return
        except AttributeError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)


def _release_parked_callbacks(session) -> None:
    """A stopped execution's `.waitForTaskToken` wait only ends at its timeout (hours); wake it."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][session.region_name]
    for machine in backend.state_machines:
        for execution in machine.executions:
            env = getattr(getattr(execution, "exec_worker", None), "env", None)
            if env is not None:
                for endpoint in list(env.callback_pool_manager._pool.values()):
                    endpoint.interrupt_all()


def create_conversation_workflow(session, prefix: str, handler: Callable | None = None) -> dict[str, str]:
    """The conversation function (a stub package in moto) and the state machine from the shared
    definition file. Returns the env var naming the state machine."""
    install_lambda_dispatch()
    install_heartbeats_during_the_invocation()
    if handler is None:
        from functions.conversation.handler import lambda_handler as handler
    function_name = f"{prefix}-conversation"
    register_function(function_name, handler)
    iam = session.client("iam")
    role_arn = iam.create_role(
        RoleName=f"{prefix}-conversation",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "# runs in-process in local mode\n")
    function_arn = session.client("lambda").create_function(
        FunctionName=function_name, Runtime="python3.13", Role=role_arn, Handler="handler.lambda_handler",
        Code={"ZipFile": package.getvalue()}, Architectures=["arm64"],
    )["FunctionArn"]
    machine_arn = session.client("stepfunctions").create_state_machine(
        name=f"{prefix}-conversation", definition=render(function_arn), roleArn=role_arn, type="STANDARD",
    )["stateMachineArn"]
    return {resources.CONVERSATION_STATE_MACHINE_ENV: machine_arn, resources.CONVERSATION_FUNCTION_ENV: function_name}
