#!/usr/bin/env python3
"""CDK entry point: `make synth`, `make deploy` (settings: the "coexist" context in cdk.json)."""

import sys
from pathlib import Path

# The stacks read table keys and queue settings from the runtime library itself (layers/coexist),
# so CDK, local mode and the functions can never disagree about them.
sys.path.insert(0, str(Path(__file__).resolve().parent / "layers"))

from aws_cdk import App  # noqa: E402

from stacks.coexist_app import build  # noqa: E402

app = App()
build(app)
app.synth()
