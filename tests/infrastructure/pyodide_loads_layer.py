"""Run in Pyodide, the runtime's Python version (layers/run_in_pyodide.mjs), over a built layer at
/opt/python: every bytecode file unmarshals into a code object, and the modules named on the
command line import from bytecode alone (compiling any module from source raises). Prints a JSON
report for tests/infrastructure/test_layer_bytecode.py."""

import importlib
import importlib.machinery
import json
import marshal
import sys
import types
from pathlib import Path

LAYER = Path("/opt/python")


def _refuse_source(self, data, path, *, _optimize=-1):
    raise ImportError(f"{path} was compiled from its source: its bytecode was not used")


unreadable = []
files = sorted(LAYER.rglob("*.pyc"))
for file in files:
    try:
        if not isinstance(marshal.loads(file.read_bytes()[16:]), types.CodeType):
            unreadable.append(f"{file}: not a code object")
    except Exception as error:  # noqa: BLE001  (any failure to read is the finding)
        unreadable.append(f"{file}: {type(error).__name__}: {error}")

importlib.machinery.SourceFileLoader.source_to_code = _refuse_source
sys.path.insert(0, str(LAYER))
loaded = {}
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    loaded[name] = {"loader": type(module.__spec__.loader).__name__, "file": module.__file__}

print(json.dumps({"python": f"{sys.version_info.major}.{sys.version_info.minor}", "files": len(files),
                  "unreadable": unreadable, "loaded": loaded}))
