"""The agent API fuzzed from its own OpenAPI document (schemathesis) against local mode: whatever
the parameters, no answer is a server error, and every answer matches the schema documented for it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.e2e.harness import API_TOKEN, LocalMode, start_local_mode

pytestmark = pytest.mark.e2e
AUTH = {"Authorization": f"Bearer {API_TOKEN}", "X-Agent-Id": "ana"}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalMode]:
    with start_local_mode() as running:
        yield running


def operations(local: LocalMode):
    reply = local.request("GET", "/api/openapi.json", headers=AUTH)
    assert reply.status == 200
    schema = schemathesis.openapi.from_dict(json.loads(reply.body))
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) >= 15  # every route of the API is in the document (guards against a vacuous pass)
    return found


def test_no_server_error_and_every_answer_matches_its_schema(local):
    # schemathesis drives hypothesis directly (its pytest plugin predates this pytest): each
    # operation gets its own generated cases, and every failure is reported, not only the first.
    failures = []
    for operation in operations(local):

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(base_url=local.http, headers=AUTH, checks=[not_a_server_error, response_schema_conformance])

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as error:  # one operation's failure; the others still run
            failures.append(f"{operation.method.upper()} {operation.path}: {str(error)[:800]}")
    assert failures == []
