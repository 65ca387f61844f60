"""Local mode's WebSocket (RFC 6455) server side: the handshake, frames both ways, pings and close."""

from __future__ import annotations

import io
import os
import struct

import pytest

from local import websocket


class Headers(dict):
    def get(self, name, default=None):
        return super().get(name, default)


def opening(**overrides) -> Headers:
    headers = {"Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    headers.update(overrides)
    return Headers({k: v for k, v in headers.items() if v is not None})


def client_frame(opcode: int, payload: bytes = b"", fin: bool = True, masked: bool = True, rsv: int = 0) -> bytes:
    """A frame as a browser sends it: masked with a random key."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Parse what the server wrote (unmasked frames)."""
    frames, stream = [], io.BytesIO(data)
    while head := stream.read(2):
        assert head[0] & 0x80, "a server sends final frames"
        assert not head[1] & 0x80, "a server never masks"
        size = head[1] & 0x7F
        if size == 126:
            size = struct.unpack("!H", stream.read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", stream.read(8))[0]
        frames.append((head[0] & 0x0F, stream.read(size)))
    return frames


def test_the_accept_key_is_the_rfcs_example():
    assert websocket.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3


def test_a_complete_opening_handshake_gives_the_key():
    assert websocket.check_handshake("GET", opening()) == "dGhlIHNhbXBsZSBub25jZQ=="


@pytest.mark.parametrize("method,headers", [
    ("POST", opening()),
    ("GET", opening(Upgrade=None)),
    ("GET", opening(Upgrade="h2c")),
    ("GET", opening(Connection="keep-alive")),
    ("GET", opening(**{"Sec-WebSocket-Version": "8"})),
    ("GET", opening(**{"Sec-WebSocket-Key": None})),
    ("GET", opening(**{"Sec-WebSocket-Key": "c2hvcnQ="})),  # 5 bytes, not 16
    ("GET", opening(**{"Sec-WebSocket-Key": "not base64!!"})),
])
def test_anything_else_is_not_a_websocket_handshake(method, headers):
    with pytest.raises(websocket.BadHandshake):
        websocket.check_handshake(method, headers)


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_text_frames_carry_any_length_with_the_right_length_encoding(size):
    text = "x" * size
    out = io.BytesIO()
    websocket.Connection(io.BytesIO(), out).send_text(text)
    data = out.getvalue()
    assert server_frames(data) == [(websocket.TEXT, text.encode())]
    assert data[1] == (size if size < 126 else 126 if size < 65536 else 127)


@pytest.mark.parametrize("size", [3, 126, 70000])
def test_a_masked_client_frame_is_unmasked(size):
    payload = os.urandom(size)
    received = websocket.read_frame(io.BytesIO(client_frame(websocket.BINARY, payload)), max_size=1 << 20)
    assert received == websocket.Frame(True, websocket.BINARY, payload)


def listen_to(*frames: bytes) -> list[tuple[int, bytes]]:
    out = io.BytesIO()
    websocket.Connection(io.BytesIO(b"".join(frames)), out).listen()
    return server_frames(out.getvalue())


def test_a_ping_is_answered_with_its_payload_and_a_close_is_echoed():
    replies = listen_to(client_frame(websocket.PING, b"are you there"), client_frame(websocket.TEXT, b"ignored"),
                        client_frame(websocket.CLOSE, struct.pack("!H", 1000) + b"bye"))
    assert replies == [(websocket.PONG, b"are you there"), (websocket.CLOSE, struct.pack("!H", 1000))]


def test_a_close_without_a_status_is_answered_with_normal_closure():
    assert listen_to(client_frame(websocket.CLOSE)) == [(websocket.CLOSE, struct.pack("!H", websocket.NORMAL_CLOSURE))]


@pytest.mark.parametrize("bad,status", [
    (client_frame(websocket.TEXT, b"hi", masked=False), websocket.PROTOCOL_ERROR),
    (client_frame(websocket.TEXT, b"hi", rsv=0x40), websocket.PROTOCOL_ERROR),
    (client_frame(0x3, b"hi"), websocket.PROTOCOL_ERROR),  # reserved opcode
    (client_frame(websocket.PING, b"p" * 126), websocket.PROTOCOL_ERROR),
    (client_frame(websocket.PING, b"p", fin=False), websocket.PROTOCOL_ERROR),
    (client_frame(websocket.BINARY, b"b" * (websocket.MAX_CLIENT_FRAME + 1)), websocket.TOO_BIG),
], ids=["unmasked", "reserved-bit", "reserved-opcode", "long-ping", "fragmented-ping", "too-big"])  # frames carry random masks
def test_a_broken_frame_closes_with_the_rfcs_status(bad, status):
    replies = listen_to(bad, client_frame(websocket.PING, b"never read"))
    assert len(replies) == 1
    opcode, payload = replies[0]
    assert opcode == websocket.CLOSE and struct.unpack("!H", payload[:2])[0] == status


def test_a_connection_that_ends_mid_frame_just_ends():
    assert listen_to(client_frame(websocket.TEXT, b"hello")[:4]) == []


def test_nothing_is_sent_after_close():
    out = io.BytesIO()
    connection = websocket.Connection(io.BytesIO(), out)
    connection.close(websocket.GOING_AWAY, "stopping")
    connection.close()  # once
    with pytest.raises(ConnectionError):
        connection.send_text("late")
    assert server_frames(out.getvalue()) == [(websocket.CLOSE, struct.pack("!H", websocket.GOING_AWAY) + b"stopping")]
