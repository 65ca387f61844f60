"""Shared fixtures: an emulated AWS account with Coexist's resources, Meta's payloads, and the
event shapes API Gateway and SQS hand to the functions."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.contract import recorder

# First, before any handler module or boto3 session exists: every AWS call a function makes in this
# session is recorded under build/aws-calls/<pid> (local mode in the e2e subprocess writes there too)
# and checked against the deployed roles by tests/infrastructure/test_iam_contract.py, which runs
# last. A directory per session: two sessions in one checkout never mix their calls. A run split over
# several processes (`make test`: pytest-xdist workers, which inherit it, then the contract check in
# a session of its own) names one directory for all of them in COEXIST_AWS_CALL_LOG.
if os.environ.get(recorder.LOG_ENV):
    AWS_CALLS = Path(os.environ[recorder.LOG_ENV])
else:
    AWS_CALLS = Path(__file__).resolve().parents[1] / "build" / "aws-calls" / str(os.getpid())
    for _stale in AWS_CALLS.parent.glob("*") if AWS_CALLS.parent.is_dir() else ():
        if _stale == AWS_CALLS or _stale.stat().st_mtime < time.time() - 86400:  # ours, or a session long gone
            shutil.rmtree(_stale, ignore_errors=True)
AWS_CALLS.mkdir(parents=True, exist_ok=True)
os.environ[recorder.LOG_ENV] = str(AWS_CALLS)
recorder.install()


def _one_botocore_loader() -> None:
    """Every boto3 session of this process shares one botocore data loader, whose caches keep the
    parsed service models and endpoint rules. A test builds a session for its emulated account and
    the layer builds another after each `wiring.reset()`; each new session parsed botocore's JSON
    files again (about half of a second of CPU per test, most of the account's setup). The files
    never change within a process. boto3 adds its own data path to the loader of every session it
    makes: once is enough."""
    import botocore.session
    from botocore.loaders import create_loader

    class _Paths(list):
        def append(self, path):
            if path not in self:
                super().append(path)

    loaders: dict = {}

    def shared_loader(search_path_string=None):
        if search_path_string not in loaders:
            loader = create_loader(search_path_string)
            loader._search_paths = _Paths(loader.search_paths)
            loaders[search_path_string] = loader
        return loaders[search_path_string]

    botocore.session.create_loader = shared_loader


_one_botocore_loader()

import copy  # noqa: E402
import json
from contextlib import contextmanager
from functools import cached_property
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from coexist import resources, wiring
from coexist.meta.signature import sign
from local.emulator import FAKE_AWS_ENV, REGION, create_resources, queue_arn
from local.gateway import proxy_event
from local.poller import sqs_event
from tests.pristine import PristineAccount

FIXTURES = Path(__file__).parent / "fixtures" / "meta"


def _isolate_handler_metrics() -> None:
    """Each function's Powertools metrics get their own store, as in their own Lambda process:
    tests run the conversation function on moto's execution thread beside the others."""
    import importlib

    from local.lambdas import _isolate_metrics

    for name in ("webhook", "ingest", "api", "sender", "templates", "sweeper", "conversation", "connect_events", "watchdog",
                 "audit_archive", "exporter", "reminders"):
        _isolate_metrics(importlib.import_module(f"functions.{name}.handler"))


_isolate_handler_metrics()

# Suites whose runs of the functions the IAM contract test checks.
RECORDING_SUITES = ("integration", "e2e")


recorded_suites: set[str] = set()  # the recording suites this session runs (tests may read it)


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: what is left is what runs
def pytest_collection_modifyitems(session, config, items):
    """Tests marked `after_suites` check what the other tests recorded: they run after all of
    them, and only when the session runs a recording suite (alone they would have nothing to check)."""
    checks = [item for item in items if item.get_closest_marker("after_suites")]
    rest = [item for item in items if item not in checks]
    _run_apart_on_one_worker(rest)
    recorded_suites.update(Path(str(item.path)).parent.name for item in rest)
    recorded_suites.intersection_update(RECORDING_SUITES)
    suites_file = AWS_CALLS / f"suites-{os.getpid()}.json"
    if recorded_suites:
        suites_file.write_text(json.dumps(sorted(recorded_suites)))
    elif checks:  # the checks in a session of their own, after the suites' sessions (make test)
        for earlier in AWS_CALLS.glob("suites-*.json"):
            recorded_suites.update(json.loads(earlier.read_text()))
    if not checks:
        return
    if not recorded_suites:
        config.hook.pytest_deselected(items=checks)
        items[:] = rest
        return
    items[:] = rest + checks


# Run on one pytest-xdist worker each (`--dist loadgroup`): the infrastructure tests share one
# synthesis of the app, the browser tests one Chromium; spread out, every worker would pay for both.
ONE_WORKER_SUITES = ("infrastructure", "browser")


def _run_apart_on_one_worker(items) -> None:
    for item in items:
        suite = Path(str(item.path)).parent.name
        if suite in ONE_WORKER_SUITES:
            item.add_marker(pytest.mark.xdist_group(suite))


APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
API_TOKEN = "test-api-token"
WABA_ID = "102290129340398"


def meta_payload(name: str) -> dict:
    """One of Meta's own example payloads (tests/fixtures/meta/meta_docs), as a fresh copy."""
    return copy.deepcopy(json.loads((FIXTURES / "meta_docs" / name).read_text()))


def wrap_value(field: str, value: dict, waba_id: str = "102290129340398") -> dict:
    """A full envelope around a change value (Meta shows some examples as the value alone)."""
    return {"object": "whatsapp_business_account", "entry": [{"id": waba_id, "changes": [{"field": field, "value": value}]}]}


class Context:
    # Shaped as deployed (a name CloudFormation generates, a request id): the logger copies them into
    # every line, and the cost model prices the lines' bytes (benchmarks/aws_requests.py).
    function_name = "Coexist-prod-Ingress-IngestFunction5C2E4E1B-Zq3Xk9Lm2Np7"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
    aws_request_id = "5c2e4e1b-7d3a-4f9e-8b21-0a6c3d9e7f41"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


@pytest.fixture
def lambda_context():
    return Context()


PRISTINE = PristineAccount()


class _TestSide:
    """The tests' own session and clients, made once per process: a client names no account, so
    each emulated account is reached through the same ones."""

    @cached_property
    def session(self):
        return boto3.Session(region_name=REGION)

    @cached_property
    def sqs(self):
        return self.session.client("sqs")

    @cached_property
    def s3(self):
        return self.session.client("s3")

    @cached_property
    def dynamodb(self):
        return self.session.resource("dynamodb")

    @cached_property
    def sfn(self):
        return self.session.client("stepfunctions")


_TEST_SIDE = _TestSide()


class Account(SimpleNamespace):
    """An emulated account as a test sees it: `env` (the resources' names) and the test side's
    clients (`session`, `sqs`, `s3`, `dynamodb`, `sfn`), made on first use."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_TEST_SIDE, name)


@contextmanager
def emulated_account(monkeypatch, config: dict | None = None, workflow: bool = False):
    """A fresh emulated account holding every Coexist resource; env set as the stacks set it."""
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config=config):
        session = _TEST_SIDE.session
        env = PRISTINE.make(lambda: create_resources(session, prefix="coexist-test"))
        if workflow:
            from local.workflows import create_conversation_workflow

            env.update(create_conversation_workflow(session, "coexist-test"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("WHATSAPP_APP_SECRET", APP_SECRET)
        monkeypatch.setenv("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)
        monkeypatch.setenv("COEXIST_API_TOKEN", API_TOKEN)
        monkeypatch.setenv("COEXIST_WABA_IDS", WABA_ID)  # the account of Meta's example payloads
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Coexist")
        monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "coexist-test")
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        # Same names, same endpoint: the functions keep the clients they made in earlier accounts.
        wiring.reset(keep_clients=True)
        idle_timers = _fired_idle_timers(session, env) if workflow else None
        try:
            yield Account(env=env, queue_arn=queue_arn(_TEST_SIDE.sqs, env["INBOUND_QUEUE_URL"]))
        finally:
            if workflow:
                from local.workflows import stop_workflows

                idle_timers.stop()
                stop_workflows(session)
            wiring.reset(keep_clients=True)


def _fired_idle_timers(session, env: dict):
    """The bot phases' idle timers fired as deployed (EventBridge Scheduler invoking the conversation
    function), by local mode's stand-in, looking every half second."""
    from functions.conversation.handler import lambda_handler
    from local.lambdas import LocalFunction
    from local.schedule import OneTimeSchedules

    timers = OneTimeSchedules.of_group(LocalFunction.of("coexist-test-conversation", lambda_handler, 60), session,
                                       env[resources.IDLE_SCHEDULE_GROUP_ENV], env[resources.IDLE_DLQ_ARN_ENV], every_s=0.5)
    timers.start()
    return timers


@pytest.fixture
def aws(monkeypatch):
    with emulated_account(monkeypatch) as account:
        yield account


def api_event(method: str, path: str, body: bytes = b"", headers: dict | None = None, resource: str = "/{proxy+}") -> dict:
    """What API Gateway (REST, binary media type application/json) passes to a function."""
    header_list = list((headers or {}).items())
    route = SimpleNamespace(resource=resource)
    return proxy_event(method, path, header_list, body, "127.0.0.1", route, {})


def signed_webhook_event(payload: dict | bytes, secret: str = APP_SECRET) -> dict:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return api_event(
        "POST", "/webhook", body,
        {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)},
        resource="/webhook",
    )


def drain_inbound(aws_ns, max_batches: int = 50, queue_env: str = "INBOUND_QUEUE_URL") -> list[dict]:
    """Receive everything on the inbound queue (or another, by its env var) as Lambda SQS events (not deleted)."""
    events = []
    url = aws_ns.env[queue_env]
    arn = aws_ns.queue_arn if queue_env == "INBOUND_QUEUE_URL" else queue_arn(aws_ns.sqs, url)
    for _ in range(max_batches):
        response = aws_ns.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10,
            MessageAttributeNames=["All"], AttributeNames=["All"], WaitTimeSeconds=0,
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        events.append(sqs_event(messages, arn))
    return events


def sqs_records(aws_ns, bodies: list[str], attributes: dict | None = None) -> dict:
    """An SQS event for bodies sent to the inbound queue (to test ingest on its own)."""
    for body in bodies:
        kwargs = {"QueueUrl": aws_ns.env["INBOUND_QUEUE_URL"], "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
        aws_ns.sqs.send_message(**kwargs)
    records = []
    for event in drain_inbound(aws_ns):
        records += event["Records"]
    return {"Records": records}


