"""Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex>` over the raw body bytes."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(body: bytes, app_secret: str) -> str:
    return PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def is_valid(body: bytes, header: str | None, app_secret: str) -> bool:
    """Constant-time check of the header against the bytes exactly as received."""
    if not header or not header.isascii() or not header.startswith(PREFIX) or not app_secret:
        return False
    return hmac.compare_digest(sign(body, app_secret), header.strip())
