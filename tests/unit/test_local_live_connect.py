"""Local mode's live channel opens a console's WebSocket the way API Gateway does: the connection is
recorded ($connect) before the console hears 101, so a change made the moment the console has
opened reaches it; a change pushed while the console is being recorded follows the 101, never
precedes it on the wire."""

from __future__ import annotations

import base64
import io
from email.message import Message

from local.live import LiveChannel, LocalManagement
from local.websocket import TEXT, frame


class Handler:
    """The HTTP server's request handler, as far as the live channel uses it."""

    def __init__(self):
        self.command, self.path = "GET", "/live?token=t"
        self.headers = Message()
        for name, value in (("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
                            ("Sec-WebSocket-Key", base64.b64encode(b"0123456789abcdef").decode())):
            self.headers[name] = value
        self.rfile = io.BytesIO(b"")  # the console goes once it has read: the reader ends
        self.wfile = io.BytesIO()
        self.status = None

    def send_response(self, status):
        self.status = status
        self.wfile.write(f"HTTP/1.1 {int(status)} Switching Protocols\r\n".encode())

    def send_header(self, name, value):
        self.wfile.write(f"{name}: {value}\r\n".encode())

    def end_headers(self):
        self.wfile.write(b"\r\n")


def test_the_console_is_recorded_before_it_hears_101_and_a_change_pushed_meanwhile_follows_the_101():
    management, handler, seen_on_the_wire_at_connect = LocalManagement(), Handler(), []

    class Connections:
        def add(self, connection_id, user, at, numbers):
            seen_on_the_wire_at_connect.append(handler.wfile.getvalue())
            # The fan-out finds the connection at once and pushes a change, from another thread
            # in local mode; here before $connect returns, the worst moment.
            import threading

            pusher = threading.Thread(target=management.post_to_connection, kwargs={"ConnectionId": connection_id, "Data": b'{"type":"changed"}'})
            pusher.start()
            pusher.join(0.2)  # it waits for the handshake: not done yet
            self.pusher = pusher

        def remove(self, connection_id):
            pass

    connections = Connections()

    class ReadsAfterThePush(io.BytesIO):
        def read(self, size=-1):
            connections.pusher.join(2)  # the console reads what was pushed, then goes
            return super().read(size)

    handler.rfile = ReadsAfterThePush(b"")
    LiveChannel(connections, management, authorise=lambda token: ("ana", None)).serve(handler)

    assert not connections.pusher.is_alive()
    assert seen_on_the_wire_at_connect == [b""]  # recorded before anything was written
    wire = handler.wfile.getvalue()
    head, _, frames = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    assert frames.startswith(frame(TEXT, b'{"type":"changed"}'))
