"""Both layers and every function's code carry bytecode for the Lambda runtime's Python, so a cold
start compiles nothing: our code beside its sources (unchecked-hash `__pycache__` files), the
third-party packages in place of theirs; and a synth packages them as the sources now are. Nothing here runs Python 3.13 natively, so the bytecode is checked twice: its header
against the runtime's constants and the pinned sources it was compiled from, and by Pyodide (CPython
3.13 in WebAssembly) reading every file and importing modules from bytecode alone."""

from __future__ import annotations

import _imp
import json
import subprocess
import sysconfig
from pathlib import Path

import pytest

from layers.build_layer import LIVE_AUTH, PYODIDE_RUNNER, SHARED, SWAGGER_UI, UNREAD_FILES, Bundle
from stacks import lambda_runtime

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked
HASH_KEY = int.from_bytes(lambda_runtime.BYTECODE_MAGIC, "little")  # what CPython keys a source's hash with
BUNDLES = [SHARED, LIVE_AUTH]


def _source_of(bundle: Bundle, pyc: Path) -> Path:
    """The source a bytecode file was compiled from: beside it for the library, else this
    environment's install of the same pinned distribution (pure Python is the same on every platform)."""
    if pyc.parent.name == "__pycache__":
        return pyc.parent.parent / (pyc.name.split(".", 1)[0] + ".py")
    return SITE_PACKAGES / pyc.relative_to(bundle.site).with_suffix(".py")


def _cached(source: Path) -> Path:
    """Where the runtime's Python looks for a source's bytecode."""
    return source.parent / "__pycache__" / f"{source.stem}.{lambda_runtime.CACHE_TAG}.pyc"


def _fault(pyc: Path, source: Path) -> str | None:
    """What is wrong with a bytecode file for the runtime, compiled from `source`; None when nothing."""
    header = pyc.read_bytes()[:16]
    if header[:4] != lambda_runtime.BYTECODE_MAGIC:
        return f"magic {header[:4]!r}"
    if int.from_bytes(header[4:8], "little") != UNCHECKED_HASH:
        return f"flags {header[4:8]!r}"
    if not source.is_file():
        return f"no source at {source}"
    if header[8:16] != _imp.source_hash(HASH_KEY, source.read_bytes()):
        return f"compiled from another source than {source}"
    return None


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda b: b.name)
def test_every_module_is_bytecode_for_the_runtime_compiled_from_its_pinned_source(synthesised, bundle: Bundle):
    sources = sorted(bundle.site.rglob("*.py"))
    if bundle is SHARED:
        assert sources and all(p.relative_to(bundle.site).parts[0] == "coexist" for p in sources)
    else:
        assert not sources
    for source in sources:  # the library's: each with its bytecode
        assert _cached(source).is_file(), source
    compiled = sorted(bundle.site.rglob("*.pyc"))
    assert len(compiled) > 100
    wrong = {}
    for pyc in compiled:
        if pyc.parent.name == "__pycache__" and f".{lambda_runtime.CACHE_TAG}.pyc" not in pyc.name:
            wrong[str(pyc)] = "another interpreter's file name"
        elif fault := _fault(pyc, _source_of(bundle, pyc)):
            wrong[str(pyc)] = fault
    assert not wrong, dict(list(wrong.items())[:10])


@pytest.mark.parametrize(
    ("bundle", "modules", "sourceless"),
    [
        (SHARED, ["typing_extensions", "annotated_types", "coexist.domain.policy"], {"typing_extensions", "annotated_types"}),
        (LIVE_AUTH, ["pycparser.c_parser"], {"pycparser.c_parser"}),
    ],
    ids=lambda v: getattr(v, "name", None),
)
def test_the_runtime_python_reads_every_bytecode_file_and_imports_from_bytecode_alone(synthesised, bundle, modules, sourceless):
    done = subprocess.run(
        ["node", str(PYODIDE_RUNNER), str(bundle.site), str(Path(__file__).with_name("pyodide_loads_layer.py")), *modules],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["python"] == lambda_runtime.PYTHON_VERSION
    assert report["files"] == len(list(bundle.site.rglob("*.pyc")))
    assert report["unreadable"] == []
    assert set(report["loaded"]) == set(modules)
    for name, found in report["loaded"].items():
        assert found["file"].startswith("/opt/python/")
        expected = "SourcelessFileLoader" if name in sourceless else "SourceFileLoader"  # the latter with its bytecode
        assert found["loader"] == expected, (name, found)


def test_the_layers_leave_out_files_no_function_reads(synthesised):
    for bundle in BUNDLES:
        for pattern in UNREAD_FILES:
            assert not list(bundle.site.glob(pattern)), (bundle.name, pattern)
    assert (SHARED.site / SWAGGER_UI / "__init__.pyc").is_file()  # only its assets went, not its modules
    # The Swagger UI is only served by `enable_swagger()`: no function calls it.
    code = [*ROOT.joinpath("functions").rglob("*.py"), *ROOT.joinpath("layers", "coexist").rglob("*.py")]
    assert not [str(p) for p in code if "enable_swagger" in p.read_text()]


TEMPLATES = ("data", "ingress", "outbound", "conversations", "operations", "compliance", "console", "live", "console_edge")


def test_each_function_deploys_its_own_code_with_bytecode_for_the_runtime(synthesised):
    """Every Coexist function's uploaded code is its folder's sources, each with unchecked-hash
    bytecode for the runtime compiled from it: the API's own modules are not compiled at its cold start."""
    checked = set()
    for name in TEMPLATES:
        for function in getattr(synthesised, name).find_resources("AWS::Lambda::Function").values():
            props = function["Properties"]
            if props.get("Handler") != "handler.lambda_handler" or "S3Key" not in props.get("Code", {}):
                continue  # CDK's own functions (custom resources)
            staged = synthesised.outdir / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
            sources = sorted(p for p in staged.rglob("*.py"))
            matching = [d for d in ROOT.joinpath("functions").iterdir()
                        if (d / "handler.py").is_file() and (d / "handler.py").read_bytes() == (staged / "handler.py").read_bytes()]
            assert len(matching) == 1, staged
            folder = matching[0]
            assert {p.relative_to(staged) for p in sources} == {
                p.relative_to(folder) for p in folder.rglob("*.py") if "__pycache__" not in p.parts}
            for source in sources:
                assert source.read_bytes() == (folder / source.relative_to(staged)).read_bytes()
                assert _fault(_cached(source), source) is None, source
            assert [p.name for p in staged.rglob("*.pyc")] and all(
                p.parent.name == "__pycache__" for p in staged.rglob("*.pyc"))
            checked.add(folder.name)
    every = {d.name for d in ROOT.joinpath("functions").iterdir() if (d / "handler.py").is_file()}
    assert checked == every - {"connect_events"}  # deployed only with Amazon Connect configured; the same construct


def test_a_function_asset_follows_its_sources_without_a_separate_build(tmp_path):
    """The stacks take each function's code from build/functions: a synth after an edit must package
    the edit, not the code of the last `make layer`."""
    from layers.build_layer import function_asset

    functions, assets = tmp_path / "functions", tmp_path / "build" / "functions"
    handler = functions / "echo" / "handler.py"
    handler.parent.mkdir(parents=True)

    def packaged(source: bytes) -> tuple[bytes, bytes]:
        handler.write_bytes(source)
        asset = function_asset(handler.parent, functions=functions, assets=assets)
        return (asset / "handler.py").read_bytes(), _cached(asset / "handler.py").read_bytes()[8:16]

    assert packaged(b"ANSWER = 1\n") == (b"ANSWER = 1\n", _imp.source_hash(HASH_KEY, b"ANSWER = 1\n"))
    assert packaged(b"ANSWER = 2\n") == (b"ANSWER = 2\n", _imp.source_hash(HASH_KEY, b"ANSWER = 2\n"))
