"""Compile a layer bundle's modules (or the functions' code) into bytecode for the Lambda runtime's Python.

Run by `layers/run_in_pyodide.mjs` inside Pyodide, a CPython of the runtime's minor version built
for WebAssembly: bytecode is the same on every platform of one CPython version, and this is the only
way to get the runtime's without installing that Python. Lambda's `/opt` is read-only, so a layer
without bytecode has every module it loads compiled again at each cold start; with it, that work is
done once, here.

The folder is mounted at `/opt/python`, where Lambda extracts a layer's `python/` folder, so the
file names compiled into each module are the ones it will have there.

- Our own code (the library, `KEEP_SOURCES`, and with `--keep-all-sources` the functions') keeps
  its sources, for tracebacks that quote its lines, and gets `__pycache__/<module>.cpython-3XX.pyc`
  beside them: unchecked-hash bytecode, which Python loads without comparing it to the source (the
  asset's file times are not preserved; nothing changes a layer's files once built).
- The third-party packages are shipped as bytecode alone (`<module>.pyc` where the source was):
  keeping both would take the shared layer over its 15 MB. Their tracebacks name file and line
  without quoting it.

    bytecode.py <runtime python version> [--keep-all-sources]
"""

from __future__ import annotations

import json
import os
import py_compile
import sys
from pathlib import Path

LAYER_ROOT = Path("/opt/python")
KEEP_SOURCES = ("coexist",)


def compile_layer(expected_version: str, keep_all_sources: bool = False) -> dict[str, int]:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version != expected_version:
        raise SystemExit(f"the bytecode compiler is Python {version}, the Lambda runtime {expected_version}")
    kept = sourceless = 0
    for source in sorted(LAYER_ROOT.rglob("*.py")):
        relative = source.relative_to(LAYER_ROOT)
        if keep_all_sources or relative.parts[0] in KEEP_SOURCES:
            py_compile.compile(str(source), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            kept += 1
        else:
            py_compile.compile(str(source), cfile=str(source.with_suffix(".pyc")), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            os.remove(source)
            sourceless += 1
    return {"with_sources": kept, "sourceless": sourceless, "cache_tag": sys.implementation.cache_tag}


if __name__ == "__main__":
    print(json.dumps(compile_layer(sys.argv[1], keep_all_sources="--keep-all-sources" in sys.argv[2:])))
