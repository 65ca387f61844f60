"""Live changes for the agent console: local mode's stand-in for the deployed push channel.

Deployed, DynamoDB Streams feed a function that pushes to the console over a WebSocket API.
Here the functions that change records (ingest, sender, conversation, and the API's writes) say
so when an invocation ends, and `GET /events` streams that to each signed-in console as
Server-Sent Events. An event names no chat, customer or message — only that something changed
and which function changed it — so the console re-reads what it shows through the API, with the
caller's own token and permissions, as it does after a dropped connection.
"""

from __future__ import annotations

import json
import queue
import threading
from http import HTTPStatus

from coexist.live.events import change_event

EVENTS_PATH = "/events"
KEEP_ALIVE_S = 15
RECONNECT_MS = 2000
QUEUE_SIZE = 64  # changes waiting for one slow console; more are dropped (one is enough to re-read)


class ChangeFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: set[queue.Queue] = set()
        self.closed = threading.Event()

    def subscribe(self) -> queue.Queue:
        listener: queue.Queue = queue.Queue(QUEUE_SIZE)
        with self._lock:
            self._listeners.add(listener)
        return listener

    def unsubscribe(self, listener: queue.Queue) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def publish(self, by: str) -> None:
        event = change_event(by)  # the same event the deployed live channel pushes
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener.put_nowait(event)
            except queue.Full:
                pass

    def close(self) -> None:
        self.closed.set()


def announce_changes(feed: ChangeFeed, function, reads_too: bool = False) -> None:
    """After each invocation of `function` that may have written, tell the feed."""

    def done(event: dict) -> None:
        if reads_too or event.get("httpMethod") not in ("GET", "HEAD", "OPTIONS"):
            feed.publish(function.name)

    function.on_done = done


class LiveChanges:
    """Serves `GET /events` for the gateway: authorised like the API, then a stream of changes."""

    def __init__(self, feed: ChangeFeed, authorise):
        self.feed = feed
        self.authorise = authorise  # (headers) -> bool: does the API accept this caller?

    def serve(self, handler) -> None:
        if not self.authorise(list(handler.headers.items())):
            body = json.dumps({"code": "unauthorized", "message": "a valid bearer token is required"}).encode()
            handler.send_response(HTTPStatus.UNAUTHORIZED)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.close_connection = True  # the stream ends the connection
        handler.send_response(HTTPStatus.OK)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("X-Content-Type-Options", "nosniff")
        handler.end_headers()
        listener = self.feed.subscribe()
        try:
            handler.wfile.write(f"retry: {RECONNECT_MS}\nevent: ready\ndata: {{}}\n\n".encode())
            handler.wfile.flush()
            while not self.feed.closed.is_set():
                try:
                    event = listener.get(timeout=KEEP_ALIVE_S)
                    chunk = f"data: {json.dumps(event)}\n\n"
                except queue.Empty:
                    chunk = ": still here\n\n"
                handler.wfile.write(chunk.encode())
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass  # the console went away; it reconnects and re-reads by itself
        finally:
            self.feed.unsubscribe(listener)


def api_authoriser(api_function, route):
    """Ask the API function itself whether it accepts these headers (one cheap read), so the
    stream follows whatever authentication and roles the API enforces."""
    from local.gateway import proxy_event

    def authorise(headers: list[tuple[str, str]]) -> bool:
        event = proxy_event("GET", "/api/agents", headers, b"", "127.0.0.1", route, {"proxy": "agents"})
        try:
            status = api_function.invoke(event).get("statusCode")
        except Exception:
            return False
        return status in (200, 403)  # 403: a valid caller without that permission

    return authorise


def serve_console_changes(api_route, writers) -> LiveChanges:
    """Local mode's wiring: the functions in `writers` feed the stream; the API route's function
    decides who may listen."""
    feed = ChangeFeed()
    for function in writers:
        announce_changes(feed, function)
    return LiveChanges(feed, api_authoriser(api_route.function, api_route))
