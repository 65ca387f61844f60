"""API Gateway (REST API, Lambda proxy integration) in front of the webhook and API functions.

Each HTTP request becomes the v1 proxy event API Gateway would send, and the function's proxy
response becomes the HTTP response. Routes mirror the deployed API: `/webhook` → the webhook
function, `/api/{proxy+}` → the API function, anything else → 404 `{"message": "Not Found"}`.

Like the deployed API (`binary_media_types=["application/json"]`), a request whose Content-Type is
application/json reaches the function base64-encoded with `isBase64Encoded: true`: that is how the
webhook gets Meta's exact bytes to check the signature against. Other bodies arrive as UTF-8 text.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from local.console_files import console_file
from local.lambdas import LocalFunction
from local.live import LIVE_PATH

log = logging.getLogger("local")
STAGE = "local"
BINARY_MEDIA_TYPES = ("application/json",)
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's request payload limit; Meta sends up to 3 MB
INTERNAL_ERROR = (502, {"message": "Internal server error"})  # what API Gateway answers when a function fails


class Route:
    def __init__(self, resource: str, function: LocalFunction, proxy_prefix: str | None = None):
        self.resource = resource
        self.function = function
        self.proxy_prefix = proxy_prefix  # "/api/" for a `{proxy+}` resource

    def match(self, path: str) -> dict | None:
        """The route's pathParameters if it serves `path`, else None ({} for a literal match)."""
        if self.proxy_prefix is None:
            return {} if path == self.resource else None
        if path.startswith(self.proxy_prefix) and len(path) > len(self.proxy_prefix):
            # `path` stays percent-encoded as API Gateway sends it; path parameters arrive decoded.
            return {"proxy": unquote(path[len(self.proxy_prefix):])}
        return None


def coexist_routes(webhook: LocalFunction, api: LocalFunction) -> list[Route]:
    return [Route("/webhook", webhook), Route("/api/{proxy+}", api, proxy_prefix="/api/")]


def is_binary_media_type(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in BINARY_MEDIA_TYPES


def proxy_event(
    method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str, route: Route, path_parameters: dict
) -> dict:
    """The REST API (v1) Lambda proxy event for one request."""
    url = urlsplit(raw_path)
    query = parse_qsl(url.query, keep_blank_values=True)
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value  # API Gateway keeps the last value of a repeated header
        multi_headers.setdefault(name, []).append(value)
    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        single_query[name] = value
        multi_query.setdefault(name, []).append(value)
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    encoded = bool(body) and is_binary_media_type(content_type)
    request_id = str(uuid.uuid4())
    return {
        "resource": route.resource,
        "path": url.path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.resource,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "path": f"/{STAGE}{url.path}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": source_ip, "userAgent": single_headers.get("User-Agent")},
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": (base64.b64encode(body).decode() if encoded else body.decode("utf-8", "replace")) if body else None,
        "isBase64Encoded": encoded,
    }


def _response_parts(response, accept: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
    """Validate a proxy response the way API Gateway does; a malformed one is a 502."""
    if not isinstance(response, dict) or not isinstance(response.get("statusCode"), int):
        raise ValueError("Malformed Lambda proxy response")
    headers = [(k, str(v)) for k, v in (response.get("headers") or {}).items()]
    multi = response.get("multiValueHeaders") or {}
    headers = [(k, v) for k, v in headers if k not in multi]
    headers += [(k, str(v)) for k, values in multi.items() for v in values]
    body = response.get("body") or ""
    if not isinstance(body, str):
        raise ValueError("Malformed Lambda proxy response")
    if response.get("isBase64Encoded"):
        # API Gateway only decodes when the client accepts a binary media type; otherwise the
        # caller gets the base64 text, exactly as the deployed API would return it.
        wants_binary = any(is_binary_media_type(part) for part in (accept or "").split(","))
        return response["statusCode"], headers, base64.b64decode(body) if wants_binary else body.encode()
    return response["statusCode"], headers, body.encode()


class GatewayHandler(BaseHTTPRequestHandler):
    server: "Gateway"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        # The request line carries query strings (verify tokens, chat ids): log method, route, status only.
        pass

    def _serve(self) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        if path == LIVE_PATH and self.server.live is not None:
            return self.server.live.serve(self)  # the console's live channel, a WebSocket (local/live.py)
        route, params = self.server.route_for(path)
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True  # the unread body would otherwise be parsed as the next request
            return self._reply(411, [], json.dumps({"message": "Length Required"}).encode(), started, "-")
        size = int(length or 0)
        if size > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            return self._reply(413, [], json.dumps({"message": "Request Too Long"}).encode(), started, "-")
        body = self.rfile.read(size) if size else b""
        if route is None and self._serve_console_file(path, started):
            return None
        if route is None:
            return self._reply(404, [], json.dumps({"message": "Not Found"}).encode(), started, "-")
        event = proxy_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0], route, params)
        try:
            status, headers, payload = _response_parts(route.function.invoke(event), self.headers.get("Accept"))
        except Exception:
            print(f"[local] {route.function.name} failed:\n{traceback.format_exc()}", file=sys.stderr)
            status, error = INTERNAL_ERROR
            headers, payload = [], json.dumps(error).encode()
        self._reply(status, headers, payload, started, route.resource)

    def _serve_console_file(self, path: str, started: float) -> bool:
        """The agent console's page and assets, on the API's origin (local/console_files.py)."""
        if self.command not in ("GET", "HEAD"):
            return False
        found = console_file(path)
        if found is not None:
            self._reply(200, *found, started, "/console")
        return found is not None

    def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes, started: float, resource: str) -> None:
        self.send_response(status)
        names = {k.lower() for k, _ in headers}
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if "content-type" not in names:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        log.info("%s %s -> %s (%.0f ms)", self.command, resource, status, (time.monotonic() - started) * 1000)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve


class Gateway(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen backlog: socketserver's 5 resets a burst of concurrent clients
    live = None  # a local.live.LiveChannel serving the WebSocket at LIVE_PATH, when local mode sets one

    def __init__(self, address: tuple[str, int], routes: list[Route]):
        super().__init__(address, GatewayHandler)
        self.routes = routes

    def route_for(self, path: str) -> tuple[Route | None, dict]:
        for route in self.routes:
            params = route.match(path)
            if params is not None:
                return route, params
        return None, {}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def serve(gateway: Gateway) -> Callable[[], None]:
    """Serve in a thread; returns the function that stops it."""
    import threading

    thread = threading.Thread(target=gateway.serve_forever, name="gateway", daemon=True)
    thread.start()

    def stop() -> None:
        gateway.shutdown()
        gateway.server_close()
        thread.join(timeout=5)

    return stop
