"""X-Ray never receives what a Coexist function returns or raises: both can carry health data."""

from __future__ import annotations

from tests.infrastructure.conftest import resources_of


def test_every_coexist_function_keeps_errors_and_responses_out_of_its_traces(synthesised):
    checked = []
    for template in (synthesised.ingress, synthesised.outbound, synthesised.conversations):
        for name, function in resources_of(template, "AWS::Lambda::Function").items():
            env = function["Properties"].get("Environment", {}).get("Variables", {})
            if not str(env.get("POWERTOOLS_SERVICE_NAME", "")).startswith("coexist-"):
                continue  # CDK's own helper functions run no Coexist code
            assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
            assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false", name
            assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", name
            checked.append(env["POWERTOOLS_SERVICE_NAME"])
    assert {"coexist-webhook", "coexist-ingest", "coexist-api", "coexist-sender", "coexist-templates", "coexist-conversation"} <= set(checked)
