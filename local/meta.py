"""Acting as Meta towards the local webhook: sign a payload and POST it.

    python -m local replay payload.json [more.json ...] [--url URL] [--secret SECRET]

Meta signs the exact bytes it sends (`X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`), so a file is
posted byte for byte, never re-serialised. A raw archive object (`raw/…/*.jsonl`, a batch of bodies
as the raw archive function wrote them) is posted body by body, each as it was received. The secret
defaults to `WHATSAPP_APP_SECRET`, else the local development secret — the same defaults local mode
itself uses.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

from coexist.meta.signature import sign  # the one implementation, shared with the webhook's check

SIGNATURE_HEADER = "X-Hub-Signature-256"
__all__ = ["SIGNATURE_HEADER", "default_webhook_url", "post_webhook", "replay", "sign"]


def default_webhook_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('COEXIST_PORT', '8080')}/webhook"


def post_webhook(url: str, body: bytes, secret: str, timeout: float = 30) -> tuple[int, bytes]:
    """POST a signed body; returns (status, response body) for any HTTP status."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret)},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def replay(paths: list[str], url: str, secret: str) -> int:
    """Post each file (each body of a raw archive object); the exit status is non-zero if any was
    not answered 200."""
    worst = 0
    for path in paths:
        for name, body in _bodies(path):
            status, reply = post_webhook(url, body, secret)
            print(f"{name}: {status} {reply[:200].decode('utf-8', 'replace')}")
            worst = worst or int(status != 200)
    return worst


def _bodies(path: str) -> list[tuple[str, bytes]]:
    with open(path, "rb") as f:
        content = f.read()
    if not path.endswith(".jsonl"):
        return [(path, content)]
    from coexist.store.archive import raw_bodies

    return [(f"{path} line {n}", body) for n, (_, body) in enumerate(raw_bodies(content), start=1)]
