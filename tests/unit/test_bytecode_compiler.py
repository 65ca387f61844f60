"""The layers' bytecode compiler (layers/bytecode.py, run in Pyodide at build time) refuses to
compile for a runtime of another Python version than its own: that bytecode would be refused by the
runtime's interpreter, every module compiled again at each cold start or failing to load."""

from __future__ import annotations

import sys

import pytest

from layers.bytecode import compile_layer


def test_the_compiler_refuses_a_runtime_of_another_python_version():
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    with pytest.raises(SystemExit, match=rf"the bytecode compiler is Python {ours}, the Lambda runtime 2\.7"):
        compile_layer("2.7")
