"""Development defaults exist only in local mode: anywhere else the API takes only Cognito and a
function without its secrets' ARNs does not start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coexist.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ARNS = {
    "WHATSAPP_APP_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-AbCdEf",
    "WHATSAPP_VERIFY_TOKEN_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:verify-AbCdEf",
    "WHATSAPP_ACCESS_TOKEN_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:access-AbCdEf",
}


def test_local_mode_is_the_local_stage_outside_lambda():
    assert Settings.from_environ({}).local
    assert Settings.from_environ({}).api_auth == "token"
    assert not Settings.from_environ({"COEXIST_STAGE": "prod"}).local
    assert not Settings.from_environ({"AWS_LAMBDA_FUNCTION_NAME": "coexist-api"}).local  # stage "local" deployed


def test_outside_local_mode_the_api_takes_only_cognito():
    assert Settings.from_environ({"COEXIST_STAGE": "prod"}).api_auth == "cognito"
    for environ in (
        {"COEXIST_STAGE": "prod", "COEXIST_API_AUTH": "token"},
        {"AWS_LAMBDA_FUNCTION_NAME": "coexist-api", "COEXIST_API_AUTH": "token"},
    ):
        with pytest.raises(ValueError, match="COEXIST_API_AUTH=token is local mode's"):
            Settings.from_environ(environ)
    with pytest.raises(ValueError, match="'token' or 'cognito'"):
        Settings.from_environ({"COEXIST_STAGE": "prod", "COEXIST_API_AUTH": "none"})


def test_missing_secret_arns_stop_a_deployed_function_and_no_default_is_ever_used():
    deployed = Settings.from_environ({"COEXIST_STAGE": "prod", "WHATSAPP_APP_SECRET_ARN": ARNS["WHATSAPP_APP_SECRET_ARN"]})
    with pytest.raises(RuntimeError, match="WHATSAPP_VERIFY_TOKEN_ARN"):
        deployed.require_secret_arns("app_secret", "verify_token")
    with pytest.raises(RuntimeError, match="WHATSAPP_ACCESS_TOKEN_ARN"):
        deployed.secret("access_token")
    with pytest.raises(RuntimeError, match="WHATSAPP_VERIFY_TOKEN_ARN"):
        deployed.secret("verify_token")  # never the known local default
    Settings.from_environ({"COEXIST_STAGE": "prod", **ARNS}).require_secret_arns("app_secret", "verify_token", "access_token")
    local = Settings.from_environ({})
    local.require_secret_arns("app_secret", "verify_token", "access_token")
    assert local.secret("app_secret") == "local-app-secret"


@pytest.mark.parametrize(("module", "missing"), [
    ("functions.api.handler", "WHATSAPP_ACCESS_TOKEN_ARN"),
    ("functions.webhook.handler", "WHATSAPP_APP_SECRET_ARN"),
    ("functions.sender.handler", "WHATSAPP_ACCESS_TOKEN_ARN"),
    ("functions.templates.handler", "WHATSAPP_ACCESS_TOKEN_ARN"),
])
def test_a_deployed_function_without_its_secrets_fails_at_import(module, missing):
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": f"{REPO / 'layers'}{os.pathsep}{REPO}",
        "AWS_LAMBDA_FUNCTION_NAME": "coexist-x",
        "COEXIST_STAGE": "prod",
        "COEXIST_API_AUTH": "cognito",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    result = subprocess.run([sys.executable, "-c", f"import {module}"], env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert missing in result.stderr
    ok = subprocess.run([sys.executable, "-c", f"import {module}"], env=environ | ARNS, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
