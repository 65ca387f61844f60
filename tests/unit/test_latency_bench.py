"""`make bench` times the cold start of every function: a new function is not left out."""

from __future__ import annotations

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
