"""Local mode in a subprocess, driven over HTTP the way Meta and an agent console would drive it.

`start_local_mode` (the session fixture `local_mode` in conftest.py) starts `python -m local --port 0 --moto-port 0` once per session, waits for its
`COEXIST_LOCAL_READY {json}` line and yields a `LocalMode` with the URLs and small HTTP helpers.
The process writes to a file rather than a pipe, so a chatty handler can never block it on a full
pipe; on a startup failure or timeout the test fails with that output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from local.meta import SIGNATURE_HEADER, sign
from local.runtime import READY_PREFIX

from tests.contract import recorder

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "meta"
READY_TIMEOUT_S = 60
APP_SECRET = "e2e-app-secret"
VERIFY_TOKEN = "e2e-verify-token"
API_TOKEN = "e2e-api-token"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LocalMode:
    http: str
    moto: str
    sns_topic_arn: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen
    meta_sandbox: str | None = None  # the Meta sandbox's URL (None when a real Graph API is configured)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Response:
        request = urllib.request.Request(self.http + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return Response(reply.status, dict(reply.headers), reply.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())

    def post_webhook(self, body: bytes, secret: str = APP_SECRET, signature: str | None = None) -> Response:
        """POST `body` as Meta does: exact bytes, signed with the app secret unless `signature` is given."""
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature or sign(body, secret)}
        return self.request("POST", "/webhook", body, headers)

    def api_get(self, path: str, token: str | None = API_TOKEN) -> Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.request("GET", "/api" + path, headers=headers)

    def chat_id_of(self, phone_number_id: str, wa_id: str | None = None, user_id: str | None = None) -> str:
        """The opaque id of the chat a phone number (or a BSUID) names, looked up through the API
        (`GET /api/chats?phone_number_id=…&wa_id=…`); "" while nobody is known by it."""
        query = f"phone_number_id={phone_number_id}&" + (f"wa_id={wa_id}" if wa_id else f"user_id={user_id}")
        reply = self.api_get(f"/chats?{query}")
        items = reply.json()["items"] if reply.status == 200 else []
        return items[0]["chat_id"] if items else ""

    def sandbox(self, method: str, path: str, body: dict | None = None) -> Response:
        """Call the Meta sandbox's control routes (`/_sandbox/stats`, `/_sandbox/faults`, ...)."""
        if not self.meta_sandbox:
            pytest.skip("local mode runs against a real Graph API, not the sandbox")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.meta_sandbox + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return Response(reply.status, dict(reply.headers), reply.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.25) -> Any:
    """Poll `predicate` until it returns something truthy; return that, or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last result: {result!r})")
        time.sleep(interval)


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def _read_ready_line(log_path: Path) -> dict | None:
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith(READY_PREFIX + " "):
            return json.loads(line[len(READY_PREFIX) + 1 :])
    return None


@contextmanager
def start_local_mode(extra_env: dict[str, str] | None = None, args: list[str] | None = None) -> Iterator[LocalMode]:
    """Run `python -m local` on free ports (or with these `args`) until the block ends."""
    env = {
        **os.environ,
        # The repo first, as `make run` has it; the caller's own path entries are kept after it.
        "PYTHONPATH": os.pathsep.join(p for p in [str(REPO / "layers"), str(REPO), os.environ.get("PYTHONPATH")] if p),
        "PYTHONUNBUFFERED": "1",
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "COEXIST_API_TOKEN": API_TOKEN,
        "COEXIST_API_AUTH": "token",
        **(extra_env or {}),
    }
    with tempfile.TemporaryDirectory(prefix="coexist-e2e-") as tmp:
        log_path = Path(tmp) / "local-mode.log"
        with open(log_path, "wb") as log:
            # When the session records the functions' AWS calls, local mode records them too.
            entry = "tests.contract.local_mode" if env.get(recorder.LOG_ENV) else "local"
            process = subprocess.Popen(
                [sys.executable, "-m", entry, *(args or ["--port", "0", "--moto-port", "0"])],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            ready = None
            while ready is None:
                ready = _read_ready_line(log_path)
                if ready is None and (process.poll() is not None or time.monotonic() > deadline):
                    pytest.fail(
                        f"local mode not ready (exit code {process.poll()}) after "
                        f"{READY_TIMEOUT_S} s; its output:\n{log_path.read_text(errors='replace')}"
                    )
                time.sleep(0.1)
            yield LocalMode(
                ready["http"], ready["moto"], ready["sns_topic_arn"], ready.get("env", {}), log_path, process,
                meta_sandbox=ready.get("meta_sandbox"),
            )
        finally:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
