"""What every function's log lines carry of the invocation (coexist.observability.lambda_entry)."""

from __future__ import annotations

import json

from coexist.observability import lambda_entry, powertools
from tests.conftest import Context


def test_a_log_line_carries_the_invocations_request_id_and_cold_start_not_what_its_log_group_says(capsys):
    logger, tracer, metrics = powertools("coexist-observed")

    @lambda_entry(logger, tracer, metrics)
    def handler(event, context):
        logger.info("handled", extra={"outcome": "done"})
        return {"ok": True}

    assert handler({}, Context()) == {"ok": True}
    assert handler({}, Context()) == {"ok": True}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"handled"' in line]
    assert len(lines) == 2
    for line in lines:
        assert line["function_request_id"] == Context.aws_request_id and line["outcome"] == "done"
        assert not {"function_name", "function_arn", "function_memory_size"} & set(line)
    assert [line["cold_start"] for line in lines] in ([True, False], [False, False])  # one process, one cold start


def test_an_api_gateway_request_is_logged_with_its_request_id_as_the_correlation_id(capsys):
    from aws_lambda_powertools.logging import correlation_paths

    logger, tracer, metrics = powertools("coexist-observed-api")

    @lambda_entry(logger, tracer, correlation_id_path=correlation_paths.API_GATEWAY_REST)
    def handler(event, context):
        logger.info("answered")
        return {"statusCode": 200}

    handler({"requestContext": {"requestId": "c0ffee00-1234-4abc-9def-0123456789ab"}}, Context())
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"answered"' in line]
    assert line["correlation_id"] == "c0ffee00-1234-4abc-9def-0123456789ab"
    assert line["function_request_id"] == Context.aws_request_id and "function_arn" not in line
