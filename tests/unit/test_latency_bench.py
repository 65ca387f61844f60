"""`make bench` times the cold start of every function: a new function is not left out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.latency import FIRST_USE

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def test_every_function_has_its_cold_start_measured():
    assert set(FIRST_USE) == {path.parent.name for path in FUNCTIONS.glob("*/handler.py")}


def test_first_use_names_only_what_wiring_builds():
    from coexist import wiring

    for function, first_use in FIRST_USE.items():
        for call in first_use.split(";"):
            name = call.strip().removeprefix("wiring.").removesuffix("()")
            assert callable(getattr(wiring, name, None)), f"{function}: wiring.{name}"


def _pooled_resources_after_cold_start(function: str) -> int:
    from benchmarks.latency import ROOT, cold_start_code, cold_start_environment

    code = cold_start_code(function) + "print(aws._resources.qsize())\n"
    out = subprocess.run([sys.executable, "-c", code], env=cold_start_environment(), capture_output=True, text=True, check=True, cwd=ROOT)
    return int(out.stdout.strip().splitlines()[-1])


def test_a_cold_start_is_measured_up_to_the_first_table_call_where_the_function_has_tables():
    # The sweeper's wiring holds the messages table: its first call builds boto3's DynamoDB
    # resource, which its cold start pays before its first request. The webhook holds no table.
    assert _pooled_resources_after_cold_start("sweeper") == 1
    assert _pooled_resources_after_cold_start("webhook") == 0
