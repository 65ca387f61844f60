"""Build the Lambda layer bundles without Docker: the shared one, `build/layer/python/`, which every
function runs on, and the live channel authorizer's, `build/layer-live-auth/python/`.

pip downloads wheels built for the Lambda runtime (CPython and CPU from `stacks/lambda_runtime.py`)
instead of the machine running the build, and the `coexist` library is copied beside them. The AWS
SDK that the Python runtime already ships is removed: bundling a second botocore only grows the layer
and shadows the runtime's own copy. urllib3 is the exception: the layer carries the pinned, audited
one (requirements.txt), which the runtime's botocore then uses, since Lambda puts the layer's
`python/` ahead of the runtime's own packages on sys.path; the runtime image's urllib3 is whatever
version AWS last shipped, outside this project's pins and its dependency audit.

The live channel's authorizer checks Cognito's RS256 signatures with joserfc, whose RSA maths is
`cryptography` (14 MB compiled: more than all the shared layer holds). Only that one function needs
them, so they are a second layer that only it carries (requirements-live-auth.txt), holding what
they need beyond the shared layer; every other function's code stays without them.

Every module of both bundles, and each function's own code (`build/functions/<name>`, the asset it
deploys), carries bytecode for the runtime's Python (layers/bytecode.py, run in Pyodide under Node):
Lambda's code and layer folders are read-only, so a module without it is compiled at every cold start.

    python layers/build_layer.py                     # both bundles and the functions' code, each only if an input changed
    python layers/build_layer.py --bundle live-auth  # one of them
    python layers/build_layer.py --functions         # the functions' code alone
    python layers/build_layer.py --force             # rebuild regardless
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stacks import lambda_runtime  # noqa: E402  (plain constants, no aws_cdk import)

LIBRARY = ROOT / "layers" / "coexist"
REQUIREMENTS = ROOT / "requirements.txt"
REQUIREMENTS_LIVE_AUTH = ROOT / "requirements-live-auth.txt"
CONSTRAINTS = ROOT / "constraints.txt"
RUNTIME_CONSTANTS = ROOT / "stacks" / "lambda_runtime.py"

# Unzipped, as Lambda counts a layer against a function's 250 MB: the shared layer's budget keeps
# every function's cold start and deployment package small; the authorizer's is cryptography's size.
SHARED_TARGET_MB = 15
LIVE_AUTH_TARGET_MB = 17

# Distributions the Lambda Python runtime provides (boto3 and what it pulls in) and the layer leaves
# to it. Not urllib3: the HTTP client every AWS and Graph API call goes through is pinned here.
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"}
# Shipped in the layer even though the runtime has its own, at the version constraints.txt pins.
BUNDLED_OVER_RUNTIME = {"urllib3"}


# The library's modules and the data files it ships with (the bot's default rules).
LIBRARY_PATTERNS = ("*.py", "*.json")

# Installed with the packages but read by no function: Powertools' Swagger UI (1.7 MB, served only
# by `enable_swagger()`, which Coexist never calls), C sources shipped beside their compiled module,
# and type stubs.
SWAGGER_UI = "aws_lambda_powertools/event_handler/openapi/swagger_ui"
UNREAD_FILES = (f"{SWAGGER_UI}/*.js", f"{SWAGGER_UI}/*.css", "**/*.c", "**/*.pyi")

# Bytecode for the runtime's Python (layers/bytecode.py), compiled in Pyodide under Node.
BYTECODE_COMPILER = ROOT / "layers" / "bytecode.py"
PYODIDE_RUNNER = ROOT / "layers" / "run_in_pyodide.mjs"
PYODIDE = ROOT / "node_modules" / "pyodide"
NODE_LOCK = ROOT / "package-lock.json"  # pins Pyodide, hence the compiler
# What every build is made with besides its own sources: this script, the runtime and the compiler.
BUILD_INPUTS = (Path(__file__), RUNTIME_CONSTANTS, BYTECODE_COMPILER, PYODIDE_RUNNER, NODE_LOCK)

FUNCTIONS = ROOT / "functions"  # one folder per Lambda entry point
FUNCTION_ASSETS = ROOT / "build" / "functions"  # each function's code asset: its sources and their bytecode


def _library_files() -> list[Path]:
    files = {p for pattern in LIBRARY_PATTERNS for p in LIBRARY.rglob(pattern)}
    return sorted(p for p in files if "__pycache__" not in p.parts)


@dataclass(frozen=True)
class Bundle:
    """One layer's asset folder: pip's install of `requirements` for the runtime, in `site`."""

    name: str
    requirements: Path
    directory: Path  # the CDK asset: Lambda mounts its `python/` on sys.path (/opt/python)
    carries_library: bool  # the coexist package, copied beside the wheels
    target_mb: int

    @property
    def site(self) -> Path:
        return self.directory / "python"

    @property
    def stamp(self) -> Path:  # outside the asset, so it does not change the asset's hash
        return self.directory.with_name(self.directory.name + ".inputs.sha256")

    def inputs(self) -> list[Path]:
        files = [self.requirements, CONSTRAINTS, *BUILD_INPUTS]
        if self is not SHARED:  # it leaves out what the shared layer carries, which requirements.txt decides
            files.append(SHARED.requirements)
        return files + (_library_files() if self.carries_library else [])


SHARED = Bundle("shared", REQUIREMENTS, ROOT / "build" / "layer", carries_library=True, target_mb=SHARED_TARGET_MB)
LIVE_AUTH = Bundle(
    "live-auth", REQUIREMENTS_LIVE_AUTH, ROOT / "build" / "layer-live-auth", carries_library=False,
    target_mb=LIVE_AUTH_TARGET_MB,
)
BUNDLES = {bundle.name: bundle for bundle in (SHARED, LIVE_AUTH)}
LAYER_DIR, SITE_DIR, STAMP = SHARED.directory, SHARED.site, SHARED.stamp


def digest_of(paths, base: Path = ROOT) -> str:
    """A digest of the files' names (relative to `base`) and contents."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def inputs_digest(bundle: Bundle = SHARED) -> str:
    """A digest of everything the bundle is made from; a change to any of them means a rebuild."""
    return digest_of(bundle.inputs())


@contextmanager
def _one_build_at_a_time():
    """Held while checking and building: test workers and a synth started together must not build
    the same folder at once (one would delete what the other is writing)."""
    lock = ROOT / "build" / ".build.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unzipped_bytes(bundle: Bundle) -> int:
    """What the layer weighs once Lambda has extracted it: the sum of its files' sizes."""
    return sum(p.stat().st_size for p in bundle.directory.rglob("*") if p.is_file())


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def distributions(site: Path) -> set[str]:
    """The normalised names of the distributions installed in `site`."""
    return {_normalise(p.name.removesuffix(".dist-info").rsplit("-", 1)[0]) for p in site.glob("*.dist-info")}


def _remove_distributions(site: Path, names: set[str]) -> list[str]:
    """Delete the files of each distribution named, as listed in its own RECORD."""
    removed = []
    for dist_info in sorted(site.glob("*.dist-info")):
        name = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        if _normalise(name) not in names:
            continue
        for line in (dist_info / "RECORD").read_text().splitlines():
            target = site / line.split(",", 1)[0]
            if target.is_file():
                target.unlink()
        shutil.rmtree(dist_info, ignore_errors=True)
        removed.append(name)
    # Drop the package directories RECORD emptied, console scripts and bytecode pip compiled for the
    # build machine's interpreter (Lambda would ignore it: wrong version tag).
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and (path.name == "__pycache__" or not any(path.iterdir())):
            shutil.rmtree(path)
    shutil.rmtree(site / "bin", ignore_errors=True)
    return removed


def _remove_unread_files(site: Path) -> None:
    """Before `_remove_distributions`, whose sweep takes away the folders this empties."""
    for pattern in UNREAD_FILES:
        for path in site.glob(pattern):
            if path.is_file():
                path.unlink()


def compile_bytecode(site: Path, keep_all_sources: bool = False) -> dict:
    """Compile every module of `site` for the Lambda runtime's Python (layers/bytecode.py)."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("Node.js is not on PATH: it runs Pyodide, which compiles the layer's bytecode (Node.js 20+)")
    if not (PYODIDE / "package.json").is_file():
        raise SystemExit(f"{PYODIDE.relative_to(ROOT)} is missing: run `npm ci` (make layer does) to install Pyodide, "
                         "which compiles the layer's bytecode")
    done = subprocess.run(
        [node, str(PYODIDE_RUNNER), str(site), str(BYTECODE_COMPILER), lambda_runtime.PYTHON_VERSION,
         *(["--keep-all-sources"] if keep_all_sources else [])],
        capture_output=True, text=True, cwd=ROOT,
    )
    if done.returncode:
        raise SystemExit(f"compiling the layer's bytecode failed:\n{done.stderr or done.stdout}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build(bundle: Bundle) -> None:
    shutil.rmtree(bundle.directory, ignore_errors=True)
    bundle.site.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--platform", lambda_runtime.PIP_PLATFORM,
            "--python-version", lambda_runtime.PYTHON_VERSION,
            "--implementation", "cp",
            "--only-binary=:all:",
            "--target", str(bundle.site),
            "-r", str(bundle.requirements), "-c", str(CONSTRAINTS),
        ],
        check=True,
    )
    # The authorizer runs with both layers in /opt/python: what the shared one carries stays there, once.
    elsewhere = PROVIDED_BY_RUNTIME if bundle is SHARED else PROVIDED_BY_RUNTIME | distributions(SHARED.site)
    _remove_unread_files(bundle.site)
    removed = _remove_distributions(bundle.site, elsewhere)
    if bundle.carries_library:
        for source in _library_files():
            target = bundle.site / "coexist" / source.relative_to(LIBRARY)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    compiled = compile_bytecode(bundle.site)
    print(
        f"layer built in {bundle.directory.relative_to(ROOT)}, {unzipped_bytes(bundle) / 1e6:.1f} MB unzipped, "
        f"bytecode for {compiled['cache_tag']} ({compiled['with_sources']} modules beside their sources, "
        f"{compiled['sourceless']} in their place) "
        f"(target ≤ {bundle.target_mb} MB; left to the runtime{'' if bundle is SHARED else ' and the shared layer'}: "
        f"{', '.join(removed) or 'nothing'})"
    )


def ensure_built(bundle: Bundle = SHARED, force: bool = False) -> Path:
    """Build the bundle unless the last build used exactly these inputs; return the asset folder."""
    if bundle is not SHARED:
        ensure_built(SHARED)  # what it leaves out is read from the shared bundle
    with _one_build_at_a_time():
        digest = inputs_digest(bundle)
        if force or not bundle.stamp.exists() or bundle.stamp.read_text().strip() != digest or not bundle.site.is_dir():
            build(bundle)
            bundle.stamp.write_text(digest + "\n")
    return bundle.directory


def _function_sources(functions: Path) -> list[Path]:
    return sorted(p for p in functions.rglob("*.py") if "__pycache__" not in p.parts and "tests" not in p.parts)


def function_asset(code_dir: Path, functions: Path = FUNCTIONS, assets: Path = FUNCTION_ASSETS) -> Path:
    """What a function deploys for `functions/<name>`: its sources with their bytecode for the
    runtime's Python, so its cold start compiles none of them (the API's own modules are about 60 KB).
    Brought up to date first (a digest of the sources, no work when they are unchanged): a synth
    never packages a function's code as it was at an earlier build."""
    ensure_function_assets(functions=functions, assets=assets)
    asset = assets / code_dir.relative_to(functions)
    if not (asset / "handler.py").is_file():
        raise FileNotFoundError(f"{code_dir} has no handler.py")
    return asset


def ensure_function_assets(force: bool = False, functions: Path = FUNCTIONS, assets: Path = FUNCTION_ASSETS) -> Path:
    """Copy the functions' code into `assets` and compile it, unless its inputs are unchanged."""
    stamp = assets.with_name(assets.name + ".inputs.sha256")
    with _one_build_at_a_time():
        sources = _function_sources(functions)
        digest = digest_of(BUILD_INPUTS) + digest_of(sources, base=functions)
        if not force and stamp.exists() and stamp.read_text().strip() == digest:
            return assets
        shutil.rmtree(assets, ignore_errors=True)
        for source in sources:
            target = assets / source.relative_to(functions)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        compiled = compile_bytecode(assets, keep_all_sources=True)
        print(f"function code in {assets}, bytecode for {compiled['cache_tag']} "
              f"({compiled['with_sources']} modules beside their sources)", file=sys.stderr)
        stamp.write_text(digest + "\n")
        return assets


def ensure_all_built(force: bool = False) -> None:
    for bundle in BUNDLES.values():
        ensure_built(bundle, force=force)
    ensure_function_assets(force=force)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", choices=sorted(BUNDLES), help="build only this bundle (default: both, and the functions' code)")
    parser.add_argument("--functions", action="store_true", help="build only the functions' code assets (build/functions)")
    parser.add_argument("--force", action="store_true", help="rebuild even if no input changed")
    arguments = parser.parse_args()
    if arguments.functions:
        ensure_function_assets(force=arguments.force)
    elif arguments.bundle:
        ensure_built(BUNDLES[arguments.bundle], force=arguments.force)
    else:
        ensure_all_built(force=arguments.force)
