"""The server side of the WebSocket protocol (RFC 6455), as much as the console's live channel uses.

The console only listens: the server sends text frames, answers pings and closes; a client's text
or binary message is read and dropped (the deployed API has no route for one either). Frames from
a client must be masked (RFC 6455 §5.1); a frame bigger than `MAX_CLIENT_FRAME` or a protocol
error closes the connection with the status the RFC names.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import threading
from contextlib import contextmanager
from dataclasses import dataclass

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
VERSION = "13"
MAX_CLIENT_FRAME = 64 * 1024  # a console sends nothing but pings and a close

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
NORMAL_CLOSURE, GOING_AWAY, PROTOCOL_ERROR, TOO_BIG = 1000, 1001, 1002, 1009


class ProtocolError(Exception):
    """The peer broke RFC 6455; `status` is the close code to answer with."""

    def __init__(self, message: str, status: int = PROTOCOL_ERROR):
        super().__init__(message)
        self.status = status


class BadHandshake(Exception):
    """Not a WebSocket opening handshake this server accepts (answered 400 / 426)."""


def accept_key(client_key: str) -> str:
    """`Sec-WebSocket-Accept` for the client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1((client_key + GUID).encode()).digest()).decode()  # noqa: S324 - the RFC's hash


def check_handshake(method: str, headers) -> str:
    """The client's key when `headers` (a Message) open a WebSocket; BadHandshake otherwise."""
    if method != "GET":
        raise BadHandshake("a WebSocket opens with GET")
    if (headers.get("Upgrade") or "").lower() != "websocket":
        raise BadHandshake("Upgrade: websocket is required")
    if "upgrade" not in [part.strip().lower() for part in (headers.get("Connection") or "").split(",")]:
        raise BadHandshake("Connection: Upgrade is required")
    if headers.get("Sec-WebSocket-Version") != VERSION:
        raise BadHandshake("only WebSocket version 13 is spoken")
    key = headers.get("Sec-WebSocket-Key") or ""
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        raise BadHandshake("Sec-WebSocket-Key must be 16 bytes, base64") from None
    return key


def frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final, unmasked frame (a server never masks, §5.1)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


def close_frame(status: int, reason: str = "") -> bytes:
    return frame(CLOSE, struct.pack("!H", status) + reason.encode()[:123])


@dataclass(frozen=True)
class Frame:
    fin: bool
    opcode: int
    payload: bytes


def _read_exactly(stream, size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise EOFError("the connection closed mid-frame")
    return data


def read_frame(stream, max_size: int = MAX_CLIENT_FRAME) -> Frame:
    """The next frame from a client, unmasked. EOFError when the connection ends."""
    first, second = _read_exactly(stream, 2)
    fin, opcode = bool(first & 0x80), first & 0x0F
    if first & 0x70:
        raise ProtocolError("reserved bits set without an extension")
    if opcode not in (CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG):
        raise ProtocolError("unknown opcode")
    if not second & 0x80:
        raise ProtocolError("a client's frame must be masked")
    size = second & 0x7F
    if opcode >= CLOSE and (size > 125 or not fin):
        raise ProtocolError("a control frame is at most 125 bytes and not fragmented")
    if size == 126:
        size = struct.unpack("!H", _read_exactly(stream, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", _read_exactly(stream, 8))[0]
    if size > max_size:
        raise ProtocolError("frame too big", TOO_BIG)
    mask = _read_exactly(stream, 4)
    masked = _read_exactly(stream, size)
    return Frame(fin, opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(masked)))


class Connection:
    """One open WebSocket: sending is thread-safe (the fan-out and the reader both send)."""

    def __init__(self, rfile, wfile) -> None:
        self._rfile, self._wfile = rfile, wfile
        self._lock = threading.Lock()
        self.closed = False

    def send_text(self, text: str) -> None:
        self._send(frame(TEXT, text.encode()))

    @contextmanager
    def holding_frames(self):
        """Frames sent meanwhile wait until the block ends (the opening handshake goes first)."""
        with self._lock:
            yield

    def close(self, status: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame once; the reader ends when the client answers (or goes)."""
        if not self.closed:
            try:
                self._send(close_frame(status, reason))
            except OSError:
                pass
            self.closed = True

    def _send(self, data: bytes) -> None:
        with self._lock:
            if self.closed:
                raise ConnectionError("the WebSocket is closed")
            self._wfile.write(data)
            self._wfile.flush()

    def listen(self) -> None:
        """Read until the client closes: answer pings, echo a close, drop messages (§5.5)."""
        try:
            while True:
                received = read_frame(self._rfile)
                if received.opcode == PING:
                    self._send(frame(PONG, received.payload))
                elif received.opcode == CLOSE:
                    status = received.payload[:2] if len(received.payload) >= 2 else struct.pack("!H", NORMAL_CLOSURE)
                    if not self.closed:
                        self._send(frame(CLOSE, status))
                        self.closed = True
                    return
        except ProtocolError as error:
            self.close(error.status, str(error))
        except (EOFError, ConnectionError, OSError):
            pass
        finally:
            self.closed = True
