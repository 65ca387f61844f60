"""The call recorder: which function made a call, including from its thread pools, and what it writes."""

from __future__ import annotations

import importlib
import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from stacks.constructs.shared_layer import FUNCTIONS
from tests.contract import recorder


def test_every_handler_is_attributed_to_its_function():
    for path in sorted(FUNCTIONS.glob("*/handler.py")):
        module = importlib.import_module(f"functions.{path.parent.name}.handler")
        assert module.lambda_handler.__coexist_function__ == path.parent.name


def test_work_a_handler_hands_to_a_thread_pool_is_still_the_functions():
    seen = []

    def handler(event, context):
        with ThreadPoolExecutor(max_workers=2) as pool:
            seen.extend(pool.map(lambda _: recorder.current_function.get(), range(4)))

    recorder._attributed("ingest", handler)({}, None)
    assert seen == ["ingest"] * 4
    with ThreadPoolExecutor(max_workers=1) as pool:  # outside a handler: nobody's
        assert pool.submit(recorder.current_function.get).result() is None


def test_a_call_is_written_once_with_the_variables_that_name_its_resource(tmp_path, monkeypatch):
    monkeypatch.setenv(recorder.LOG_ENV, str(tmp_path))
    monkeypatch.setenv("CHATS_TABLE", "recorder-test-chats")
    operation = lambda service, name: SimpleNamespace(  # noqa: E731  (what botocore passes as `model`)
        name=name, auth_type=None, auth=None, service_model=SimpleNamespace(service_name=service))
    model = operation("dynamodb", "GetItem")

    def handler(event, context):
        for _ in range(2):
            recorder._on_call(params={"TableName": "recorder-test-chats"}, model=model)
        recorder._on_call(params={}, model=operation("connect", "StartChatContact"))  # no ContactFlowId

    recorder._on_call(params={"TableName": "recorder-test-chats"}, model=model)  # outside a handler: not recorded
    recorder._attributed("api", handler)({}, None)
    lines = [json.loads(line) for path in tmp_path.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert lines[0] == {
        "function": "api", "action": "dynamodb:GetItem", "context": {},
        "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/recorder-test-chats",
        "bindings": {"CHATS_TABLE": "recorder-test-chats"},
    }
    # A call whose resource cannot be derived is recorded so that the contract check refuses it.
    assert lines[1]["action"] == "connect:StartChatContact" and lines[1]["resource"].startswith("(not derived")
    assert len(lines) == 2
