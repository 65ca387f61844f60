"""Build the shared Lambda layer bundle, `build/layer/python/`, without Docker.

pip downloads wheels built for the Lambda runtime (CPython and CPU from `stacks/lambda_runtime.py`)
instead of the machine running the build, and the `coexist` library is copied beside them. The AWS
SDK that the Python runtime already ships is removed: bundling a second botocore only grows the layer
and shadows the runtime's own copy. urllib3 is the exception: the layer carries the pinned, audited
one (requirements.txt), which the runtime's botocore then uses, since Lambda puts the layer's
`python/` ahead of the runtime's own packages on sys.path; the runtime image's urllib3 is whatever
version AWS last shipped, outside this project's pins and its dependency audit.

    python layers/build_layer.py           # rebuild only if an input changed
    python layers/build_layer.py --force   # rebuild regardless
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stacks import lambda_runtime  # noqa: E402  (plain constants, no aws_cdk import)

LIBRARY = ROOT / "layers" / "coexist"
REQUIREMENTS = ROOT / "requirements.txt"
CONSTRAINTS = ROOT / "constraints.txt"
LAYER_DIR = ROOT / "build" / "layer"  # the CDK asset: Lambda mounts its `python/` on sys.path
SITE_DIR = LAYER_DIR / "python"
STAMP = ROOT / "build" / "layer.inputs.sha256"  # outside the asset, so it does not change its hash

# Distributions the Lambda Python runtime provides (boto3 and what it pulls in) and the layer leaves
# to it. Not urllib3: the HTTP client every AWS and Graph API call goes through is pinned here.
PROVIDED_BY_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six"}
# Shipped in the layer even though the runtime has its own, at the version constraints.txt pins.
BUNDLED_OVER_RUNTIME = {"urllib3"}


# The library's modules and the data files it ships with (the bot's default rules).
LIBRARY_PATTERNS = ("*.py", "*.json")


def _library_files() -> list[Path]:
    files = {p for pattern in LIBRARY_PATTERNS for p in LIBRARY.rglob(pattern)}
    return sorted(p for p in files if "__pycache__" not in p.parts)


def inputs_digest() -> str:
    """A digest of everything the bundle is made from; a change to any of them means a rebuild."""
    digest = hashlib.sha256()
    for path in [REQUIREMENTS, CONSTRAINTS, Path(__file__), ROOT / "stacks" / "lambda_runtime.py", *_library_files()]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _remove_runtime_provided(site: Path) -> list[str]:
    """Delete the files of each runtime-provided distribution, as listed in its own RECORD."""
    removed = []
    for dist_info in sorted(site.glob("*.dist-info")):
        name = dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        if _normalise(name) not in PROVIDED_BY_RUNTIME:
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


def build() -> None:
    shutil.rmtree(LAYER_DIR, ignore_errors=True)
    SITE_DIR.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "--platform", lambda_runtime.PIP_PLATFORM,
            "--python-version", lambda_runtime.PYTHON_VERSION,
            "--implementation", "cp",
            "--only-binary=:all:",
            "--target", str(SITE_DIR),
            "-r", str(REQUIREMENTS), "-c", str(CONSTRAINTS),
        ],
        check=True,
    )
    removed = _remove_runtime_provided(SITE_DIR)
    for source in _library_files():
        target = SITE_DIR / "coexist" / source.relative_to(LIBRARY)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    print(f"layer built in {LAYER_DIR.relative_to(ROOT)} (left to the runtime: {', '.join(removed) or 'nothing'})")


def ensure_built(force: bool = False) -> Path:
    """Build the bundle unless the last build used exactly these inputs; return the asset folder."""
    digest = inputs_digest()
    if force or not STAMP.exists() or STAMP.read_text().strip() != digest or not SITE_DIR.is_dir():
        build()
        STAMP.write_text(digest + "\n")
    return LAYER_DIR


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even if no input changed")
    ensure_built(force=parser.parse_args().force)
