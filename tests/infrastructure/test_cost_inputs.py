"""`make cost` reads each function's memory from the stacks' source: it must be what the
synthesized templates deploy."""

from __future__ import annotations

from benchmarks.cost import memory_mb
from tests.infrastructure.conftest import resources_of


def test_the_cost_models_memory_is_the_deployed_memory(synthesised):
    deployed = {}
    for template in (synthesised.ingress, synthesised.outbound, synthesised.conversations, synthesised.operations):
        for function in resources_of(template, "AWS::Lambda::Function").values():
            service = function["Properties"].get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME", "")
            if service.startswith("coexist-"):
                deployed[service.removeprefix("coexist-")] = function["Properties"]["MemorySize"]
    assert {"webhook", "ingest", "api", "sender", "conversation"} <= set(deployed)
    assert {service: memory_mb(service) for service in deployed} == deployed
