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
