"""The agent console's files, served by the local gateway on the same origin as `/api`.

Deployed, CloudFront serves the same folder from S3 with the same security headers; here the
gateway answers a GET for `/` or a file in `console/` with it, and anything else stays the
gateway's 404. Only files inside the folder are served (no `..`, no hidden files), with a strict
Content-Security-Policy: every script and style comes from this origin, none inline.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

CONSOLE_DIR = Path(__file__).resolve().parent.parent / "console"
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' https: data:",
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cache-Control", "no-cache"),  # local files change while someone works on them
)
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8",
         ".json": "application/json", ".svg": "image/svg+xml"}


def console_file(path: str, root: Path = CONSOLE_DIR) -> tuple[list[tuple[str, str]], bytes] | None:
    """The headers and bytes of the console file at URL `path`, or None when there is none."""
    relative = "index.html" if path in ("", "/") else path.lstrip("/")
    parts = relative.split("/")
    if any(part in ("", "..") or part.startswith(".") for part in parts):
        return None
    file = root.joinpath(*parts)
    if not file.is_file():
        return None
    content_type = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return [("Content-Type", content_type), *SECURITY_HEADERS], file.read_bytes()
