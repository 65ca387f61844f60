"""The real CDK CLI synthesises the app with no AWS credentials and no Docker."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


def test_cdk_synth_works_offline(tmp_path, synthesised):  # the fixture has built the layer bundle
    if not CDK.exists():
        pytest.fail("node_modules is missing: run `make node_modules/.installed` (make test does)")
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_"))}
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-role credentials either
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
            "PYTHONPATH": f"{ROOT / 'layers'}:{ROOT}",
        }
    )
    version = subprocess.run([str(CDK), "--version"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert version.stdout.startswith(pinned)
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--no-notices", "--output", str(tmp_path / "cdk.out")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    templates = sorted(p.name for p in (tmp_path / "cdk.out").glob("*.template.json"))
    assert templates == [f"Coexist-dev-{name}.template.json" for name in ("Console", "ConsoleEdge", "Conversations", "Data", "Ingress", "Live", "Operations", "Outbound")]
    assert "docker" not in result.stderr.lower()
