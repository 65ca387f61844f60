"""The IAM contract: every AWS call a function made while the integration and e2e suites ran is
allowed by that function's role in the synthesized templates.

moto enforces no IAM, so a grant that is too narrow passes every other test and fails only when
deployed. The calls are recorded as the functions make them (tests/contract/recorder.py, installed
by tests/conftest.py before anything else) and checked here, against the stage with every optional
setting (Amazon Connect, End User Messaging Social, bots), which holds every function and grant.

Ordering: this test is marked `after_suites`; tests/conftest.py moves it after every other test of
the session, and leaves it out of a session that runs neither the integration nor the e2e suite.
Records live in files (build/aws-calls), so calls made by local mode in its own process count too.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from layers.build_layer import digest_of
from stacks.constructs.service_function import ServiceFunction
from tests.conftest import AWS_CALLS, RECORDING_SUITES, recorded_suites
from tests.contract import recorder
from tests.contract.calls import queue_arn
from tests.contract.contract import check, deployment
from tests.contract.template import Templates

pytestmark = pytest.mark.infra


ROOT = Path(__file__).resolve().parents[2]
# What the stage's templates and its functions are made from: the stacks, their settings, the code
# they package and read (resources, handlers, the workflow's definition), the stage's settings and
# the pinned CDK library that turns them into templates.
SYNTH_INPUTS = ("cdk.json", "app.py", "constraints.txt", "stacks", "functions", "layers/coexist", "statemachine",
                "tests/infrastructure/conftest.py")


def deployment_inputs(stacks) -> dict:
    """The templates (JSON) and each function's code directory, stack and logical id."""
    return {
        "templates": {stack.stack_name: Template.from_stack(stack).to_json() for stack in stacks.all},
        "functions": [
            (construct.code_dir.name, stack.stack_name, stack.resolve(construct.function.node.default_child.logical_id))
            for stack in stacks.all
            for construct in stack.node.find_all()
            if isinstance(construct, ServiceFunction)
        ],
    }


def synth_inputs_digest() -> str:
    files = []
    for name in SYNTH_INPUTS:
        path = ROOT / name
        files += sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
    return digest_of(files, base=ROOT)[:16]


@pytest.fixture(scope="module")
def deployed(request):
    """The stage with every optional setting, as deployed. Synthesising it takes most of a minute;
    `make test` runs this module twice (its checks with the suites, the recorded calls' check in a
    session after them), so the first session leaves the synthesised inputs beside the recorded
    calls and the second reads them back, as long as nothing they are made from has changed."""
    saved = AWS_CALLS / f"deployment-{synth_inputs_digest()}.json"
    if saved.is_file():
        inputs = json.loads(saved.read_text())
    else:
        inputs = deployment_inputs(request.getfixturevalue("customised"))
        saved.parent.mkdir(parents=True, exist_ok=True)
        partial = saved.with_name(f"{saved.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(inputs))
        partial.replace(saved)  # whole or absent, whatever else reads the directory meanwhile
    return deployment(Templates(inputs["templates"]), [tuple(f) for f in inputs["functions"]])


def test_every_function_of_the_code_is_deployed_with_a_role(deployed):
    from stacks.constructs.shared_layer import FUNCTIONS

    code = {path.parent.name for path in FUNCTIONS.glob("*/handler.py")}
    assert set(deployed.functions) == code
    for function in deployed.functions.values():
        assert function.statements, function.code


@pytest.mark.after_suites
def test_every_recorded_aws_call_is_allowed_by_the_calling_functions_role(deployed):
    calls = recorder.read(AWS_CALLS)
    assert calls, "the suites ran but no function call was recorded"
    if recorded_suites == set(RECORDING_SUITES):
        # Both suites drive these functions; one missing here means its calls went unseen.
        assert {call["function"] for call in calls} >= {"webhook", "ingest", "api", "sender", "conversation"}
    violations = check(calls, deployed)
    assert not violations, "calls the deployed roles refuse:\n" + "\n".join(map(str, violations))


def test_the_contract_refuses_the_grant_ingest_had_before_for_a_quarantined_record(deployed):
    """Ingest once could put only under unhandled/; deployed, every quarantined record and every End
    User Messaging Social body failed with AccessDenied. The check catches exactly that."""
    ingest = deployed.functions["ingest"]
    calls = [
        {"function": "ingest", "action": "s3:PutObject", "context": {}, "bindings": {"ARCHIVE_BUCKET": "coexist-test-archive"},
         "resource": f"arn:aws:s3:::coexist-test-archive/{prefix}2027/01/15/ab12.json"}
        for prefix in ("quarantine/", "raw/", "unhandled/")
    ]
    assert check(calls, deployed) == []  # the grant as it is

    def unhandled_only(statement: dict) -> dict:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if "s3:PutObject" not in actions:
            return statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        return {**statement, "Resource": [r for r in resources if r.endswith("/unhandled/*")]}

    before = replace(deployed, functions={**deployed.functions, "ingest": replace(ingest, statements=[unhandled_only(s) for s in ingest.statements])})
    bucket = ingest.environment["ARCHIVE_BUCKET"]
    assert [str(v) for v in check(calls, before)] == [
        f"ingest: s3:PutObject on arn:aws:s3:::{bucket}/quarantine/2027/01/15/ab12.json: not allowed by its role",
        f"ingest: s3:PutObject on arn:aws:s3:::{bucket}/raw/2027/01/15/ab12.json: not allowed by its role",
    ]


def test_writes_to_the_archive_and_the_queues_are_also_checked_against_their_key(deployed):
    """Putting to the archive or sending to a queue makes S3 or SQS use the CMK for the caller:
    the check knows which key encrypts each of them."""
    webhook = deployed.functions["webhook"].environment
    queue, archive = queue_arn(webhook["INBOUND_QUEUE_URL"]), f"arn:aws:s3:::{webhook['ARCHIVE_BUCKET']}"
    assert queue in deployed.keys_by_resource and archive in deployed.keys_by_resource
    data_key = deployed.keys_by_resource[queue]
    assert data_key == deployed.keys_by_resource[archive] and data_key.startswith("arn:aws:kms:")
    # The one other key: the console's files have theirs (stacks/constructs/console_hosting.py).
    assert len(set(deployed.keys_by_resource.values()) - {data_key}) == 1


def test_a_stage_kept_from_the_first_session_is_read_back_only_while_its_inputs_are_unchanged(tmp_path, monkeypatch):
    """The kept stage is named by a digest of what it is made from: any change to those files names
    another (and synthesises again); a change elsewhere does not."""
    for name in SYNTH_INPUTS:
        path = tmp_path / name
        if "." in path.name:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{name}\n")
        else:
            (path / "inner").mkdir(parents=True)
            (path / "inner" / "module.py").write_text(f"# {name}\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("prose\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    first = synth_inputs_digest()
    (tmp_path / "docs" / "README.md").write_text("other prose\n")
    assert synth_inputs_digest() == first
    for name in SYNTH_INPUTS:
        changed = tmp_path / name if "." in (tmp_path / name).name else tmp_path / name / "inner" / "module.py"
        before = changed.read_text()
        changed.write_text(before + "# changed\n")
        assert synth_inputs_digest() != first, name
        changed.write_text(before)
    assert synth_inputs_digest() == first
