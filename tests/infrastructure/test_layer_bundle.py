"""The layer bundle is built for the runtime the functions declare, from one constant."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from layers.build_layer import BUNDLED_OVER_RUNTIME, CONSTRAINTS, PROVIDED_BY_RUNTIME, REQUIREMENTS, SITE_DIR
from stacks import lambda_runtime

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def site(synthesised) -> Path:  # the synthesised fixture has built the bundle
    return SITE_DIR


def test_pydantic_core_is_compiled_for_the_lambda_interpreter_and_cpu(site):
    compiled = sorted(p.name for p in (site / "pydantic_core").glob("*.so"))
    assert compiled, "pydantic_core has no compiled module"
    assert all(name.endswith(lambda_runtime.EXTENSION_SUFFIX) for name in compiled), compiled
    assert lambda_runtime.EXTENSION_SUFFIX == "cpython-313-aarch64-linux-gnu.so"


def test_every_compiled_wheel_is_tagged_manylinux_aarch64_for_the_runtime_python(site):
    tags = {}
    for wheel in site.glob("*.dist-info/WHEEL"):
        lines = wheel.read_text().splitlines()
        if "Root-Is-Purelib: false" in lines:  # has compiled code
            tags[wheel.parent.name] = [line.split(": ", 1)[1] for line in lines if line.startswith("Tag: ")]
    assert any(name.startswith("pydantic_core-") for name in tags)
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
    assert not list(site.rglob("__pycache__"))  # bytecode for the build machine's Python is useless


def test_bundle_carries_the_pinned_urllib3_rather_than_the_runtimes(site):
    """The runtime's botocore imports urllib3 from the layer (Lambda puts /opt/python first)."""
    pins = dict(line.strip().split("==") for line in CONSTRAINTS.read_text().splitlines() if "==" in line)
    assert BUNDLED_OVER_RUNTIME == {"urllib3"} and not BUNDLED_OVER_RUNTIME & PROVIDED_BY_RUNTIME
    (dist_info,) = site.glob("urllib3-*.dist-info")
    metadata = dict(
        line.split(": ", 1) for line in (dist_info / "METADATA").read_text().splitlines() if ": " in line and not line.startswith(" ")
    )
    assert metadata["Version"] == pins["urllib3"] == pins_of_requirements()["urllib3"]
    assert (site / "urllib3" / "__init__.py").is_file() and (site / "urllib3" / "connectionpool.py").is_file()


def pins_of_requirements() -> dict[str, str]:
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.strip().split("==")
            pins[name.split("[")[0]] = version
    return pins


@pytest.mark.parametrize(("stack", "count"), [("ingress", 3), ("outbound", 5), ("operations", 2)])
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
