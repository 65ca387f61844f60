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

from layers.build_layer import LIVE_AUTH, SHARED, Bundle, ensure_built
from stacks import lambda_runtime
from stacks.constructs.service_function import ARCHITECTURE, RUNTIME

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"  # one folder per Lambda entry point


def shared_layer(scope: Construct, id: str = "SharedLibrary") -> lambda_.LayerVersion:
    return _layer(scope, id, SHARED, "coexist library + Powertools + pydantic")


def live_auth_layer(scope: Construct, id: str = "LiveAuthLibrary") -> lambda_.LayerVersion:
    """joserfc and cryptography, for the live channel's authorizer only, on top of the shared layer."""
    return _layer(scope, id, LIVE_AUTH, "joserfc + cryptography, the live authorizer's token checks,")


def _layer(scope: Construct, id: str, bundle: Bundle, contents: str) -> lambda_.LayerVersion:
    # Rebuilt here when an input changed since the last build (a digest check otherwise): a synth
    # never packages the library as it was at an earlier `make layer`.
    directory = ensure_built(bundle)
    return lambda_.LayerVersion(
        scope,
        id,
        code=lambda_.Code.from_asset(str(directory)),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"{contents} for {lambda_runtime.RUNTIME_NAME} {lambda_runtime.ARCHITECTURE}",
    )
