"""The layer bundles are built for the runtime the functions declare, from one constant: the shared
one every function carries, within 15 MB, and the token libraries' one, which only the live
channel's authorizer carries; each function finds every module it loads in its layers."""

from __future__ import annotations

import functools
import importlib.metadata
import sysconfig
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from benchmarks.latency import FIRST_USE
from layers.build_layer import (
    BUNDLED_OVER_RUNTIME, CONSTRAINTS, LIVE_AUTH, PROVIDED_BY_RUNTIME, REQUIREMENTS, REQUIREMENTS_LIVE_AUTH, SHARED,
    SITE_DIR, Bundle, distributions, unzipped_bytes,
)
from stacks import lambda_runtime
from stacks.constructs.service_function import ServiceFunction
from tests.function_imports import LIVE_AUTHORIZER, distributions_required, modules_loaded_by

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def site(synthesised) -> Path:  # the synthesised fixture has built the bundle
    return SITE_DIR


def test_pydantic_core_is_compiled_for_the_lambda_interpreter_and_cpu(site):
    compiled = sorted(p.name for p in (site / "pydantic_core").glob("*.so"))
    assert compiled, "pydantic_core has no compiled module"
    assert all(name.endswith(lambda_runtime.EXTENSION_SUFFIX) for name in compiled), compiled
    assert lambda_runtime.EXTENSION_SUFFIX == "cpython-313-aarch64-linux-gnu.so"


@pytest.mark.parametrize(("bundle", "compiled"), [(SHARED, "pydantic_core"), (LIVE_AUTH, "cryptography")], ids=lambda v: getattr(v, "name", v))
def test_every_compiled_wheel_is_tagged_manylinux_aarch64_for_the_runtime_python(synthesised, bundle, compiled):
    tags = {}
    for wheel in bundle.site.glob("*.dist-info/WHEEL"):
        lines = wheel.read_text().splitlines()
        if "Root-Is-Purelib: false" in lines:  # has compiled code
            tags[wheel.parent.name] = [line.split(": ", 1)[1] for line in lines if line.startswith("Tag: ")]
    assert any(name.startswith(f"{compiled}-") for name in tags)
    for name, dist_tags in tags.items():
        assert any(
            (t.startswith(f"{lambda_runtime.PYTHON_TAG}-{lambda_runtime.PYTHON_TAG}-manylinux") or _stable_abi_for_runtime(t))
            and t.endswith("_aarch64")
            for t in dist_tags
        ), (name, dist_tags)


def _stable_abi_for_runtime(tag: str) -> bool:
    """A `cp3X-abi3` wheel (the stable ABI, e.g. cryptography's) runs on every CPython from 3.X on."""
    python, abi, platform = tag.split("-", 2)
    runtime = int(lambda_runtime.PYTHON_TAG.removeprefix("cp3"))
    return abi == "abi3" and python.startswith("cp3") and int(python.removeprefix("cp3")) <= runtime and platform.startswith("manylinux")


def test_bundle_carries_the_library_and_leaves_the_sdk_to_the_runtime(site):
    assert (site / "coexist" / "resources.py").is_file()
    assert (site / "coexist" / "bots" / "rules.json").is_file()  # data the library loads at run time
    assert (site / "aws_lambda_powertools").is_dir() and (site / "pydantic").is_dir()
    installed = {p.name.removesuffix(".dist-info").rsplit("-", 1)[0].lower().replace("_", "-") for p in site.glob("*.dist-info")}
    assert not installed & PROVIDED_BY_RUNTIME
    assert not (site / "botocore").exists() and not (site / "boto3").exists()
    # Bytecode for the build machine's Python would be useless: only the runtime's (test_layer_bytecode).
    assert all(p.name.endswith(f".{lambda_runtime.CACHE_TAG}.pyc") for d in site.rglob("__pycache__") for p in d.iterdir())


def test_bundle_carries_the_pinned_urllib3_rather_than_the_runtimes(site):
    """The runtime's botocore imports urllib3 from the layer (Lambda puts /opt/python first)."""
    pins = dict(line.strip().split("==") for line in CONSTRAINTS.read_text().splitlines() if "==" in line)
    assert BUNDLED_OVER_RUNTIME == {"urllib3"} and not BUNDLED_OVER_RUNTIME & PROVIDED_BY_RUNTIME
    (dist_info,) = site.glob("urllib3-*.dist-info")
    metadata = dict(
        line.split(": ", 1) for line in (dist_info / "METADATA").read_text().splitlines() if ": " in line and not line.startswith(" ")
    )
    assert metadata["Version"] == pins["urllib3"] == pins_of_requirements()["urllib3"]
    assert (site / "urllib3" / "__init__.pyc").is_file() and (site / "urllib3" / "connectionpool.pyc").is_file()


def pins_of_requirements() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.strip().split("==")
            pins[name.split("[")[0]] = version
    return pins


@pytest.mark.parametrize(("stack", "count"), [("ingress", 4), ("outbound", 5), ("operations", 2)])
def test_every_function_runs_the_bundle_runtime_on_arm64_with_its_stacks_layer(synthesised, stack, count):
    template = getattr(synthesised, stack)
    functions = template.find_resources("AWS::Lambda::Function")
    assert len(functions) == count
    layer_id = synthesised.logical_id(getattr(synthesised.stacks, stack).layer)
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == f"python{lambda_runtime.PYTHON_VERSION}" == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        assert props["Layers"] == [{"Ref": layer_id}], name  # never an imported (exported) layer ARN
    template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleRuntimes": ["python3.13"], "CompatibleArchitectures": ["arm64"]},
    )


def test_both_layers_are_the_same_bundle(synthesised):
    """One asset, uploaded once: the stacks cannot run different library versions after a deploy."""
    content = [
        next(iter(getattr(synthesised, stack).find_resources("AWS::Lambda::LayerVersion").values()))["Properties"]["Content"]
        for stack in ("ingress", "outbound")
    ]
    assert content[0] == content[1]


@pytest.mark.parametrize("bundle", [SHARED, LIVE_AUTH], ids=lambda b: b.name)
def test_every_compiled_module_is_for_the_lambda_interpreter_and_cpu(synthesised, bundle):
    compiled = sorted(str(p.relative_to(bundle.site)) for p in bundle.site.rglob("*.so"))
    assert compiled
    for name in compiled:  # the runtime's own suffix, or the stable ABI (cryptography's Rust core)
        assert name.endswith("." + lambda_runtime.EXTENSION_SUFFIX) or name.endswith(".abi3.so"), name


def _uploaded_bytes(synthesised, template, layer) -> int:
    """The unzipped size of what CDK uploads for this layer: its staged asset in the cloud assembly."""
    key = template.find_resources("AWS::Lambda::LayerVersion")[synthesised.logical_id(layer)]["Properties"]["Content"]["S3Key"]
    staged = synthesised.outdir / f"asset.{key.removesuffix('.zip')}"
    return sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())


def test_the_shared_layer_is_within_15_mb_unzipped(synthesised):
    """What every function carries, as uploaded: Lambda extracts it into /opt for each new instance."""
    uploaded = _uploaded_bytes(synthesised, synthesised.ingress, synthesised.stacks.ingress.layer)
    assert uploaded == unzipped_bytes(SHARED)  # the asset is the bundle, as built
    assert SHARED.target_mb == 15
    assert uploaded <= SHARED.target_mb * 1e6, f"{uploaded / 1e6:.1f} MB"
    assert not (SITE_DIR / "cryptography").exists() and not (SITE_DIR / "joserfc").exists()


def test_the_token_layer_is_within_its_bound_and_carries_what_the_shared_one_shed(synthesised):
    uploaded = _uploaded_bytes(synthesised, synthesised.live, synthesised.stacks.live.channel.token_layer)
    assert uploaded == unzipped_bytes(LIVE_AUTH)
    assert uploaded <= LIVE_AUTH.target_mb * 1e6, f"{uploaded / 1e6:.1f} MB"
    assert uploaded >= 10e6  # cryptography's compiled core: the weight the shared layer no longer carries
    assert (LIVE_AUTH.site / "cryptography" / "hazmat").is_dir() and (LIVE_AUTH.site / "joserfc" / "jwt.pyc").is_file()


def test_each_layer_holds_what_its_requirements_bring_and_the_token_layer_nothing_twice(synthesised):
    """pip's install, less what the runtime provides and, for the token layer, less the shared layer's
    (Lambda extracts both into one /opt/python for the authorizer)."""
    shared = distributions_required(REQUIREMENTS) - PROVIDED_BY_RUNTIME
    tokens = distributions_required(REQUIREMENTS_LIVE_AUTH) - shared - PROVIDED_BY_RUNTIME
    assert distributions(SHARED.site) == shared
    assert distributions(LIVE_AUTH.site) == tokens
    assert {"joserfc", "cryptography", "cffi", "pycparser"} == tokens
    assert not (LIVE_AUTH.site / "coexist").exists() and (SHARED.site / "coexist").is_dir()
    assert not list(LIVE_AUTH.site.rglob("__pycache__")) and not (LIVE_AUTH.site / "bin").exists()


def test_only_the_live_authorizer_carries_the_token_layer(synthesised):
    channel = synthesised.stacks.live.channel
    token_layer = {"Ref": synthesised.logical_id(channel.token_layer)}
    authorizer = channel.authorizer_function
    functions = [c for c in synthesised.app.node.find_all() if isinstance(c, ServiceFunction)]
    # Every function of the app (the Amazon Connect handoff's only when a stage configures it).
    assert {f.code_dir.name for f in functions} == set(FIRST_USE) - {"connect_events"}
    templates = {
        stack.stack_name: getattr(synthesised, name).to_json()
        for name in ("data", "ingress", "outbound", "conversations", "operations", "compliance", "console", "live")
        if (stack := getattr(synthesised.stacks, name))
    }

    def layers_of(function: ServiceFunction) -> list:
        resources = templates[function.function.stack.stack_name]["Resources"]
        return resources[synthesised.logical_id(function.function)]["Properties"]["Layers"]

    for function in functions:
        layers = layers_of(function)
        if function is authorizer:
            shared = layers_of(channel.connections_function)
            assert layers == [*shared, token_layer], layers  # the shared layer first, then its own
        else:
            assert len(layers) == 1 and token_layer not in layers, (function.service_name, layers)
    layer = synthesised.live.find_resources("AWS::Lambda::LayerVersion")[token_layer["Ref"]]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert "cryptography" in layer["Properties"]["Description"]


# Loaded from this environment by a function, though neither layer nor runtime SDK ships them: an
# optional import that goes its own way without them, or this environment's start-up.
NOT_IN_LAMBDA = {
    "certifi": "botocore's optional import; without it botocore uses its own CA bundle (the runtime's SDK)",
    "setuptools": "_distutils_hack, which this environment's .pth file loads at interpreter start",
}
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
STDLIB = Path(sysconfig.get_paths()["stdlib"])
ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _distributions_of_top_level_names() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # reads every installed distribution: once


def _owner(relative: Path) -> str:
    top = relative.parts[0].split(".", 1)[0]
    (owner, *_) = _distributions_of_top_level_names().get(top, [top])
    return owner.lower().replace("_", "-")


def _path_in_a_layer(file: str) -> str | None:
    """Where a module this environment loaded lies in a layer bundle; None for what Lambda itself
    provides: the standard library, the function's own code, the runtime's SDK."""
    path = Path(file)
    if path.is_relative_to(ROOT / "layers" / "coexist"):
        return str(path.relative_to(ROOT / "layers"))
    if path.is_relative_to(ROOT / "functions"):
        return None  # the function's asset
    if path.is_relative_to(SITE_PACKAGES):
        relative = path.relative_to(SITE_PACKAGES)
        owner = _owner(relative)
        if owner in PROVIDED_BY_RUNTIME or owner in NOT_IN_LAMBDA:
            return None
        here = sysconfig.get_config_var("EXT_SUFFIX")  # this interpreter's: the bundle has the runtime's
        return str(relative).removesuffix(here) + "." + lambda_runtime.EXTENSION_SUFFIX if str(relative).endswith(here) else str(relative)
    if path.is_relative_to(STDLIB):
        return None
    raise AssertionError(f"{file} comes from neither a layer, the function nor the runtime")


def _is_in(bundle: Bundle, path: str) -> bool:
    """A module's file is in the bundle, or its bytecode in its place (the third-party packages')."""
    return (bundle.site / path).is_file() or (path.endswith(".py") and (bundle.site / path).with_suffix(".pyc").is_file())


@pytest.mark.parametrize(
    ("functions", "bundles", "compiled"),
    [
        (sorted(set(FIRST_USE) - {LIVE_AUTHORIZER}), (SHARED,), f"pydantic_core/_pydantic_core.{lambda_runtime.EXTENSION_SUFFIX}"),
        ([LIVE_AUTHORIZER], (SHARED, LIVE_AUTH), "cryptography/hazmat/bindings/_rust.abi3.so"),
    ],
    ids=["every-other-function", "live-authorizer"],
)
def test_every_module_a_function_loads_is_in_its_layers(synthesised, functions: list[str], bundles: tuple[Bundle, ...], compiled: str):
    """Each handler imported and first used in a fresh interpreter: every module it loaded from
    outside the standard library, its own code and the runtime's SDK is a file of its layers."""
    needed = {
        name: in_layer for name, file in modules_loaded_by(functions).items()
        if file and (in_layer := _path_in_a_layer(file))
    }
    missing = {name: path for name, path in needed.items() if not any(_is_in(b, path) for b in bundles)}
    assert not missing, missing
    # What was checked: the library, Powertools and a compiled module of the right layer.
    assert any(path.startswith("coexist/") for path in needed.values())
    assert any(path.startswith("aws_lambda_powertools/") for path in needed.values())
    assert compiled in needed.values()
    assert (LIVE_AUTH in bundles) == any(path.startswith("cryptography/") for path in needed.values())
