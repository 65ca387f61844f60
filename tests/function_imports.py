"""What a deployed function loads, and which distributions a requirements file brings: the facts the
layer tests compare with the layer bundles (layers/build_layer.py).

A function's modules are those its handler imports in a fresh interpreter, with the environment the
stacks give it, plus what its first invocation wires (benchmarks/latency.FIRST_USE): the same as
its cold start, from this environment's copies of the packages the layers pin.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

from benchmarks.latency import FIRST_USE, ROOT, cold_start_environment
from stacks import lambda_runtime

# The function that checks Cognito tokens itself, and so carries the live-auth layer.
LIVE_AUTHORIZER = "live_authorizer"

# The Lambda runtime, as requirement markers see it (`; python_version < "3.11"` and the like).
RUNTIME_MARKERS = {
    "python_version": lambda_runtime.PYTHON_VERSION,
    "python_full_version": f"{lambda_runtime.PYTHON_VERSION}.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}


def modules_loaded_by(functions: list[str]) -> dict[str, str | None]:
    """Every module in `sys.modules` (name -> file) once these functions' handlers are imported
    together in one fresh interpreter and their first-use wiring has run."""
    code = "\n".join([
        "import json, sys",
        *(f"import functions.{function}.handler" for function in functions),
        "from coexist import wiring",
        *(FIRST_USE[function] for function in functions),
        "print(json.dumps({name: getattr(module, '__file__', None) for name, module in list(sys.modules.items())}))",
    ])
    done = subprocess.run(
        [sys.executable, "-c", code], env=cold_start_environment(), capture_output=True, text=True, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def distributions_required(requirements: Path) -> set[str]:
    """The distributions a requirements file brings onto the Lambda runtime: those it names and,
    transitively, what they require there (markers evaluated for the runtime, extras followed);
    read from the metadata installed here, at the versions constraints.txt pins."""
    pending = [
        Requirement(line.split("#", 1)[0].strip())
        for line in requirements.read_text().splitlines()
        if line.split("#", 1)[0].strip() and not line.lstrip().startswith("-")
    ]
    found: set[str] = set()
    followed: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement = pending.pop()
        name, extras = _normalise(requirement.name), frozenset(requirement.extras)
        if (name, extras) in followed:
            continue
        followed.add((name, extras))
        found.add(name)
        for line in importlib.metadata.requires(requirement.name) or []:
            needed = Requirement(line)
            if needed.marker is None or any(
                needed.marker.evaluate({**RUNTIME_MARKERS, "extra": extra}) for extra in {"", *extras}
            ):
                pending.append(needed)
    return found


def top_level_modules(distributions: set[str]) -> set[str]:
    """The importable top-level names these installed distributions provide."""
    return {
        module for module, owners in importlib.metadata.packages_distributions().items()
        if any(_normalise(owner) in distributions for owner in owners)
    }
