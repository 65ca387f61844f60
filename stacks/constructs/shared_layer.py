"""The shared runtime library as a Lambda layer, and where the functions' code lives.

Each stack with functions builds its own `LayerVersion` from the same bundle (one asset upload):
a layer version's ARN changes with every library change, and a CloudFormation export that changes
while another stack imports it blocks the deploy.
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


def shared_layer(scope: Construct, id: str = "SharedLibrary") -> lambda_.LayerVersion:
    if not (LAYER_BUNDLE / "python").is_dir():
        raise FileNotFoundError(f"{LAYER_BUNDLE} is missing: run `make layer` first")
    return lambda_.LayerVersion(
        scope,
        id,
        code=lambda_.Code.from_asset(str(LAYER_BUNDLE)),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description=f"coexist library + Powertools + pydantic for {lambda_runtime.RUNTIME_NAME} {lambda_runtime.ARCHITECTURE}",
    )
