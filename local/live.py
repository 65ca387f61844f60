"""Live changes for the agent console: local mode's stand-in for the deployed WebSocket API.

Deployed, an API Gateway WebSocket API records each console's connection ($connect, behind an
authorizer that reads the ID token from the `token` query parameter) and a fan-out function posts
each change to every recorded connection through the API's management endpoint. Here the gateway
speaks the same protocol on `LIVE_PATH` of the API's origin (local/websocket.py) with the same
parts: the token in the query string, checked as the API checks local mode's tokens; the
connection recorded in the emulated connections table (coexist/live/connections.py); changes
posted by coexist/live/fanout.py through `LocalManagement`, this process's management endpoint.

What changes is told by the functions themselves, when an invocation that may have written ends
(ingest, sender, conversation, reminders, the API's writes): deployed the tables' streams say it.
An event names no chat, customer or message — only that something changed (`by`: locally the
function, deployed the table) — so the console re-reads what it shows through the API, with the
caller's own token and permissions, as it does after a dropped connection.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import ClientError

from coexist.live.events import change_event
from local import websocket

log = logging.getLogger("local")
LIVE_PATH = "/live"
PENDING_CHANGES = 64  # changes waiting for the fan-out; more are dropped (one is enough to re-read)


class LocalManagement:
    """`apigatewaymanagementapi`'s `post_to_connection` for the sockets this process holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, websocket.Connection] = {}

    def attach(self, connection_id: str, connection: websocket.Connection) -> None:
        with self._lock:
            self._open[connection_id] = connection

    def detach(self, connection_id: str) -> None:
        with self._lock:
            self._open.pop(connection_id, None)

    def close_all(self) -> None:
        with self._lock:
            open_now = list(self._open.values())
        for connection in open_now:
            connection.close(websocket.GOING_AWAY, "local mode is stopping")

    def post_to_connection(self, ConnectionId: str, Data: bytes) -> dict:  # noqa: N803 - boto3's names
        with self._lock:
            connection = self._open.get(ConnectionId)
        try:
            if connection is None:
                raise ConnectionError("no such connection")
            connection.send_text(Data.decode())
        except (ConnectionError, OSError):
            # What API Gateway answers for a connection that is gone: the fan-out forgets it.
            raise ClientError({"Error": {"Code": "GoneException", "Message": "the connection is gone"},
                               "ResponseMetadata": {"HTTPStatusCode": 410}}, "PostToConnection") from None
        return {}


class LiveChannel:
    """Serves `GET LIVE_PATH` (a WebSocket upgrade) for the gateway and pushes changes to it."""

    def __init__(self, connections, fanout, management: LocalManagement, authorise) -> None:
        self.connections = connections  # coexist.live.connections.ConnectionStore
        self.fanout = fanout  # coexist.live.fanout.Fanout posting through `management`
        self.management = management
        self.authorise = authorise  # (token) -> the caller's id, or None when the API refuses the token
        self._pending: queue.Queue = queue.Queue(PENDING_CHANGES)
        self._stopped = threading.Event()
        self._pusher = threading.Thread(target=self._push, name="live-fanout", daemon=True)
        self._pusher.start()

    # -- what changed ---------------------------------------------------------------------------

    def changed(self, by: str) -> None:
        """Queue a change for every console (never blocks the function that wrote)."""
        try:
            self._pending.put_nowait(by)
        except queue.Full:
            pass

    def _push(self) -> None:
        while not self._stopped.is_set():
            try:
                by = self._pending.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.fanout.publish(change_event(by))
            except Exception:  # a failed push is not worth more: consoles re-read every few seconds
                log.exception("live changes could not be pushed")

    def stop(self) -> None:
        self._stopped.set()
        self.management.close_all()
        self._pusher.join(timeout=2)

    # -- who listens ----------------------------------------------------------------------------

    def serve(self, handler) -> None:
        """One console's connection, from the opening handshake to its close."""
        handler.close_connection = True  # after a WebSocket (or a refusal), this TCP connection is done
        token = (parse_qs(urlsplit(handler.path).query).get("token") or [""])[0]
        if not token:  # API Gateway: no identity source, no authorizer call
            return _refuse(handler, HTTPStatus.UNAUTHORIZED, "Unauthorized")
        user = self.authorise(token)
        if user is None:  # the authorizer's Deny
            return _refuse(handler, HTTPStatus.FORBIDDEN, "Forbidden")
        try:
            key = websocket.check_handshake(handler.command, handler.headers)
        except websocket.BadHandshake as error:
            return _refuse(handler, HTTPStatus.BAD_REQUEST, str(error))
        handler.send_response(HTTPStatus.SWITCHING_PROTOCOLS)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", websocket.accept_key(key))
        handler.end_headers()
        handler.wfile.flush()

        connection = websocket.Connection(handler.rfile, handler.wfile)
        connection_id = uuid.uuid4().hex
        self.management.attach(connection_id, connection)
        self.connections.add(connection_id, user, time.time())  # $connect
        try:
            connection.listen()
        finally:
            self.management.detach(connection_id)
            self.connections.remove(connection_id)  # $disconnect


def _refuse(handler, status: HTTPStatus, message: str) -> None:
    body = json.dumps({"message": message}).encode()  # API Gateway's shape for a refused $connect
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def token_authoriser(api_settings, directory):
    """Local mode's $connect authorizer: the token as the API would take it in `Authorization`,
    checked by the API's own rules (coexist.authorization); the caller's id, or None. The settings
    are read at each connect (`api_settings()`): local mode settles them after wiring this."""
    from coexist.authorization import Credentials, Forbidden, Unauthorized, principal_of
    from coexist.reads import BadRequest

    def authorise(token: str) -> str | None:
        config = api_settings()
        credentials = Credentials(claims=None, authorization=f"Bearer {token}", agent_header=None)
        try:
            principal = principal_of(
                credentials, config.api_auth, config.api_token, config.agent_token_prefix, directory
            )
        except (Unauthorized, Forbidden, BadRequest):
            return None
        if principal.role is None:
            return None
        return principal.agent_id or "admin"

    return authorise


def announce_changes(channel: LiveChannel, function, reads_too: bool = False) -> None:
    """After each invocation of `function` that may have written, tell the channel."""

    def done(event: dict) -> None:
        if reads_too or event.get("httpMethod") not in ("GET", "HEAD", "OPTIONS"):
            channel.changed(function.name)

    function.on_done = done


def serve_console_changes(writers) -> LiveChannel:
    """Local mode's wiring: the functions in `writers` announce changes; the API's settings and
    agent directory decide who may listen; connections live in the emulated connections table."""
    from coexist import wiring
    from coexist.live.fanout import Fanout
    from coexist.settings import settings

    management = LocalManagement()
    connections = wiring.live_connections()
    channel = LiveChannel(connections, Fanout(connections, management), management,
                          token_authoriser(settings, wiring.agents().get))
    for function in writers:
        announce_changes(channel, function)
    return channel
