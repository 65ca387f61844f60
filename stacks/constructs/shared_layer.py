"""The shared runtime library as a Lambda layer, and where the functions' code lives.

Each stack with functions builds its own `LayerVersion` from the same bundle (one asset upload):
a layer version's ARN changes with every library change, and a CloudFormation export that changes
while another stack imports it blocks the deploy. The live channel's authorizer adds a second layer,
the token-checking libraries only it needs (layers/build_layer.py).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import lambda_runtime
from stacks.constructs.service_function import ARCHITECTURE, RUNTIME

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"  # one folder per Lambda entry point
LAYER_BUNDLE = ROOT / "build" / "layer"  # built by layers/build_layer.py (make layer)
LIVE_AUTH_BUNDLE = ROOT / "build" / "layer-live-auth"  # likewise


def shared_layer(scope: Construct, id: str = "SharedLibrary") -> lambda_.LayerVersion:
    return _layer(scope, id, LAYER_BUNDLE, "coexist library + Powertools + pydantic")


def live_auth_layer(scope: Construct, id: str = "LiveAuthLibrary") -> lambda_.LayerVersion:
    """joserfc and cryptography, for the live channel's authorizer only, on top of the shared layer."""
    return _layer(scope, id, LIVE_AUTH_BUNDLE, "joserfc + cryptography, the live authorizer's token checks,")


def _layer(scope: Construct, id: str, bundle: Path, contents: str) -> lambda_.LayerVersion:
    if not (bundle / "python").is_dir():
        raise FileNotFoundError(f"{bundle} is missing: run `make layer` first")
    return lambda_.LayerVersion(
        scope,
        id,
        code=lambda_.Code.from_asset(str(bundle)),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"{contents} for {lambda_runtime.RUNTIME_NAME} {lambda_runtime.ARCHITECTURE}",
    )
