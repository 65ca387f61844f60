"""The sandbox over HTTP: Graph API routes, and `/_sandbox/*` control routes for other processes.

    POST /{version}/{phone_number_id}/messages          send (version: any vNN.N)
    GET  /{version}/{waba_id}/message_templates         templates, cursor-paged
    GET  /{version}/{phone_number_id}?fields=…          the number: messaging limit tier, quality rating
    GET  /_sandbox/stats      counts: requests, accepted, errors by code, 5xx, timeouts, status POSTs
    GET  /_sandbox/messages   accepted messages: id, phone_number_id, to, type, template, received_at
    GET  /_sandbox/numbers    the numbers with their limits
    POST /_sandbox/numbers    {"phone_number_id": ..., "mps": 5, "pair_burst": 3, ...} add or change one
    POST /_sandbox/faults     a fault document (see faults.py); {"clear": true} clears
    POST /_sandbox/reset      forget messages, counts, limits' state, faults, pending statuses

The control routes are unauthenticated: the server only listens on loopback by default.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.meta_sandbox.errors import GraphError

if TYPE_CHECKING:
    from local.meta_sandbox.sandbox import MetaSandbox

MESSAGES_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/messages/?$")
TEMPLATES_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/message_templates/?$")
NUMBER_PATH = re.compile(r"^/(v\d+\.\d+)/(\d+)/?$")
MAX_BODY_BYTES = 1024 * 1024
NUMBER_FIELDS = {"display_phone_number", "waba_id", "coexistence", "mps", "pair_period_s", "pair_burst",
                 "messaging_limit_tier", "quality_rating"}


class SandboxHandler(BaseHTTPRequestHandler):
    server: "SandboxServer"
    protocol_version = "HTTP/1.1"  # keep-alive, as the Graph client pools connections
    server_version = "MetaSandbox"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass  # paths carry account and number ids; the sandbox's counts say what happened

    @property
    def sandbox(self) -> "MetaSandbox":
        return self.server.sandbox

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        match = MESSAGES_PATH.match(path)
        if match:
            return self._send_message(match.group(2), body)
        if path.startswith("/_sandbox/"):
            return self._control_post(path, body)
        self._unknown_path(path)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        match = TEMPLATES_PATH.match(url.path)
        if match:
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            page_url = lambda q: f"{self.sandbox.url}{url.path}?{urlencode(q)}"  # noqa: E731
            reply = self.sandbox.message_templates(match.group(2), self.headers.get("Authorization"), query, page_url)
            return self._json(reply.status, reply.body)
        match = NUMBER_PATH.match(url.path)
        if match:
            fields = [f for f in dict(parse_qsl(url.query)).get("fields", "").split(",") if f]
            reply = self.sandbox.phone_number(match.group(2), self.headers.get("Authorization"), fields)
            return self._json(reply.status, reply.body)
        if url.path == "/_sandbox/stats":
            return self._json(200, self.sandbox.stats())
        if url.path == "/_sandbox/messages":
            return self._json(200, {"messages": self.sandbox.messages()})
        if url.path == "/_sandbox/numbers":
            return self._json(200, {"numbers": [{**asdict(n), "throughput_mps": n.throughput_mps} for n in self.sandbox.numbers.values()]})
        self._unknown_path(url.path)

    def _send_message(self, phone_number_id: str, body: bytes) -> None:
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            error = GraphError(100, "The request body is not valid JSON.")
            return self._json(error.status, error.body())
        reply = self.sandbox.send_message(phone_number_id, self.headers.get("Authorization"), payload)
        if reply.hang is not None:
            stopped = self.sandbox.sleep(reply.hang.seconds)
            if stopped or not reply.hang.accept:
                # A hung request ends without an answer, as a dropped upstream connection does.
                self.close_connection = True
                return
        self._json(reply.status, reply.body)

    def _control_post(self, path: str, body: bytes) -> None:
        try:
            document = json.loads(body or b"{}")
            if path == "/_sandbox/faults":
                self.sandbox.add_fault(document)
                return self._json(200, {"faults": self.sandbox.faults.describe()})
            if path == "/_sandbox/reset":
                self.sandbox.reset()
                return self._json(200, {"reset": True})
            if path == "/_sandbox/numbers":
                changes = {k: v for k, v in document.items() if k in NUMBER_FIELDS}
                number = self.sandbox.configure_number(str(document["phone_number_id"]), **changes)
                return self._json(200, {**asdict(number), "throughput_mps": number.throughput_mps})
        except (ValueError, KeyError, TypeError) as error:
            return self._json(400, {"error": {"message": f"bad sandbox request: {error}"}})
        self._unknown_path(path)

    def _unknown_path(self, path: str) -> None:
        self._json(400, {"error": {"message": f"Unknown path components: {path}", "type": "OAuthException", "code": 2500}})

    def _read_body(self) -> bytes | None:
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(413, {"error": {"message": "Request too large"}})
            return None
        return self.rfile.read(size) if size else b""

    def _json(self, status: int, document: dict | None) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True  # a request hanging on a timeout fault must not block shutdown
    allow_reuse_address = True
    request_queue_size = 128  # listen backlog: concurrent senders must not be reset (socketserver's is 5)

    def __init__(self, address: tuple[str, int], sandbox: "MetaSandbox"):
        super().__init__(address, SandboxHandler)
        self.sandbox = sandbox

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that timed out on a hang fault and left: expected, not worth a traceback
        super().handle_error(request, client_address)
