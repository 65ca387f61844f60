"""Local mode's tokens over HTTP: the shared token is an admin, each demo agent has its own, the
banner prints them, and local mode will not listen beyond loopback with its published secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from local.runtime import refuse_exposed_defaults
from tests.e2e.harness import REPO, fixture_bytes, wait_until

pytestmark = pytest.mark.e2e

PHONE_NUMBER_ID = "106540352242922"  # metadata.phone_number_id in messages_text.json; a sandbox number
DEMO_AGENTS = ("ana", "ben", "chloe")


def test_the_banner_prints_each_demo_agents_token(local_mode):
    output = local_mode.output()
    assert "an admin; X-Agent-Id: ana acts as ana" in output
    for agent_id in DEMO_AGENTS:
        assert f"{agent_id}: Authorization: Bearer local-agent-{agent_id}" in output
    assert f"numbers {PHONE_NUMBER_ID}" in output


def test_a_demo_agent_token_is_that_agent_with_the_demo_numbers(local_mode):
    assert local_mode.post_webhook(fixture_bytes("meta_docs/messages_text.json")).status == 200
    listing = wait_until(lambda: (r := local_mode.api_get(f"/chats?phone_number_id={PHONE_NUMBER_ID}", token="local-agent-ana")).status == 200
                         and r.json()["items"] and r)
    assert listing.json()["items"][0]["phone_number_id"] == PHONE_NUMBER_ID
    agents = local_mode.api_get("/agents", token="local-agent-ana").json()["items"]
    assert {a["agent_id"]: a["numbers"] for a in agents}["ana"] == sorted([PHONE_NUMBER_ID, "106540352242923"])
    headers = {"Authorization": "Bearer local-agent-ana", "Content-Type": "application/json"}
    write = local_mode.request("POST", "/api/agents", b'{"agent_id": "eve", "name": "Eve"}', headers)
    assert write.status == 403 and write.json()["code"] == "forbidden"
    assert local_mode.api_get("/agents", token="local-agent-nobody").status == 401


def test_a_public_host_is_refused_while_the_published_secrets_are_in_use():
    environ = {k: v for k, v in os.environ.items() if k not in ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN", "COEXIST_API_TOKEN")}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO / "layers"), str(REPO)])
    result = subprocess.run(
        [sys.executable, "-m", "local", "--host", "0.0.0.0", "--port", "0", "--moto-port", "0"],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "WHATSAPP_APP_SECRET" in result.stderr and "COEXIST_API_TOKEN" in result.stderr


def test_only_own_secrets_open_a_public_host():
    own = {"WHATSAPP_APP_SECRET": "a1", "WHATSAPP_VERIFY_TOKEN": "v1", "COEXIST_API_TOKEN": "t1", "COEXIST_AGENT_TOKEN_PREFIX": "p1-"}
    refuse_exposed_defaults("0.0.0.0", own)  # no exit
    for host in ("127.0.0.1", "::1", "localhost"):
        refuse_exposed_defaults(host, {})  # loopback: the defaults are fine
    for name in own:
        with pytest.raises(SystemExit, match=name):
            refuse_exposed_defaults("192.168.1.20", {k: v for k, v in own.items() if k != name})
    with pytest.raises(SystemExit):
        refuse_exposed_defaults("my-laptop.example", {})


def test_the_http_functions_never_run_at_once_since_powertools_shares_their_current_event():
    """Powertools keeps the request in `BaseRouter.current_event`, one for the whole process: two
    functions holding a resolver would otherwise read each other's request. The webhook reads its
    event without one, so it runs beside the API."""
    from local.lambdas import RESOLVER_LOCK, LocalFunction

    webhook = LocalFunction("coexist-webhook", "functions.webhook.handler", 29)
    api = LocalFunction("coexist-api", "functions.api.handler", 29)
    sender = LocalFunction("coexist-sender", "functions.sender.handler", 60)
    assert webhook.load() and api.load() and sender.load()
    assert api._lock is RESOLVER_LOCK
    assert webhook._lock is not RESOLVER_LOCK and sender._lock is not RESOLVER_LOCK  # no resolver: they run beside it
