"""Local mode's live channel for the console: a WebSocket (RFC 6455) on the API's origin at /live,
opened with the token in the `token` query parameter as the deployed console opens the WebSocket
API, refused without a token (401) or with one the API does not accept (403), recorded in the
connections table while open, and told of changes with the deployed fan-out's event, naming
nothing, fed by the tables' streams: only changes of a number the caller may see.

A raw socket speaks the protocol here, byte by byte, so the test checks what a browser would see."""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import struct
import time
import uuid
from urllib.parse import quote, urlsplit

import boto3
import pytest

from local.websocket import CLOSE, PING, PONG, TEXT, accept_key
from tests.e2e.harness import API_TOKEN, start_local_mode, wait_until

pytestmark = pytest.mark.e2e
NUMBER, OTHER_NUMBER = "106540352242922", "106540352242923"  # local mode's two numbers
WAIT_S = 20  # for a change to arrive on a loaded machine (how fast it is: benchmarks, not tests)


class RawSocket:
    """The client side of RFC 6455, as a browser speaks it: masked frames, one message per frame."""

    def __init__(self, local_mode, token: str | None, path: str = "/live"):
        url = urlsplit(local_mode.http)
        self.local_mode = local_mode
        self.sock = socket.create_connection((url.hostname, url.port), timeout=WAIT_S)
        self.buffer = b""
        self.key = base64.b64encode(os.urandom(16)).decode()
        target = path + (f"?token={quote(token)}" if token is not None else "")
        self.sock.sendall((
            f"GET {target} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {local_mode.http}\r\n\r\n"
        ).encode())
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode().split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        self.body = self._read(int(self.headers.get("content-length", 0))) if self.status != 101 else b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("local mode closed the connection")
        self.buffer += chunk

    def _read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def receive(self) -> tuple[int, bytes]:
        first, second = self._read(2)
        assert first & 0x80 and not second & 0x80  # final and unmasked, from a server
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._read(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._read(8))[0]
        return first & 0x0F, self._read(size)

    def next_change(self, *tables: str) -> dict[str, dict]:
        """The next change event by each of `tables`, in whatever order they come (one read of the
        streams may carry several tables' changes, in the order the streams are read); fails after
        WAIT_S."""
        awaited, seen = set(tables), {}
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                opcode, payload = self.receive()
            except TimeoutError:
                # What local mode said meanwhile (its stream follower logs what it could not push).
                pytest.fail(f"no change by {sorted(awaited - set(seen))} within {WAIT_S} s; local mode's last output:\n{self.local_mode.output()[-3000:]}")
            assert opcode == TEXT
            event = json.loads(payload)
            assert set(event) == {"type", "by", "at"} and event["type"] == "changed"  # no chat, number or text
            if event["by"] in awaited:
                seen.setdefault(event["by"], event)
            if set(seen) == awaited:
                return seen
        pytest.fail(f"no change by {sorted(awaited - set(seen))} within {WAIT_S} s")

    def nothing_within(self, seconds: float) -> bool:
        """Nothing was pushed, nor arrives within `seconds`."""
        if self.buffer:
            return False
        readable, _, _ = select.select([self.sock], [], [], seconds)
        return not readable

    def close(self) -> None:
        self.sock.close()


def customer_writes(local_mode, phone_number_id: str) -> None:
    """A new customer's text to one of local mode's numbers, as Meta posts it."""
    wa_id = "1555" + str(uuid.uuid4().int)[:7]
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Live Test"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": "Is anyone there?"}}],
        }}]}]}).encode()
    assert local_mode.post_webhook(body).status == 200


def connections_table(local_mode):
    dynamodb = boto3.resource("dynamodb", endpoint_url=local_mode.moto, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
    return dynamodb.Table(local_mode.env["CONNECTIONS_TABLE"])


def test_without_a_token_the_socket_is_not_opened(local_mode):
    refused = RawSocket(local_mode, None)
    try:
        assert refused.status == 401 and "upgrade" not in refused.headers
    finally:
        refused.close()


@pytest.mark.parametrize("token", ["not-the-token", "local-agent-nobody", "local-agent-", API_TOKEN + "x"])
def test_a_token_the_api_would_refuse_does_not_open_the_socket(local_mode, token):
    refused = RawSocket(local_mode, token)
    try:
        assert refused.status == 403 and "upgrade" not in refused.headers
        assert json.loads(refused.body) == {"message": "Forbidden"}
    finally:
        refused.close()


def test_a_request_that_is_not_a_websocket_handshake_is_refused(local_mode):
    reply = local_mode.request("GET", f"/live?token={API_TOKEN}")
    assert reply.status == 400


def test_a_customer_message_is_pushed_to_an_open_console_without_saying_what_it_was(local_mode):
    console = RawSocket(local_mode, API_TOKEN)
    try:
        assert console.status == 101
        assert console.headers["upgrade"].lower() == "websocket"
        assert console.headers["sec-websocket-accept"] == accept_key(console.key)

        customer_writes(local_mode, NUMBER)
        console.next_change("messages")
    finally:
        console.close()


def test_an_agent_token_opens_the_socket_and_receives_changes(local_mode):
    console = RawSocket(local_mode, "local-agent-ana")
    try:
        assert console.status == 101
        customer_writes(local_mode, OTHER_NUMBER)  # ana works on both of local mode's numbers
        console.next_change("messages")
    finally:
        console.close()


def test_the_connection_is_recorded_while_open_and_forgotten_on_close_and_pings_are_answered(local_mode):
    table = connections_table(local_mode)
    before = {item["connection_id"] for item in table.scan()["Items"]}
    console = RawSocket(local_mode, "local-agent-ben")
    try:
        assert console.status == 101
        opened = wait_until(lambda: [i for i in table.scan()["Items"] if i["connection_id"] not in before])
        assert [item["user"] for item in opened] == ["ben"]
        assert opened[0]["expires_at"] - opened[0]["connected_at"] == 2 * 3600  # as deployed

        # Changes other tests make in this local mode may arrive in between: the answers are the
        # control frames that follow.
        console.send(PING, b"still there?")
        assert next_control(console) == (PONG, b"still there?")
        console.send(CLOSE, struct.pack("!H", 1000))
        assert next_control(console) == (CLOSE, struct.pack("!H", 1000))
    finally:
        console.close()
    wait_until(lambda: not {i["connection_id"] for i in table.scan()["Items"]} - before)


def next_control(console) -> tuple[int, bytes]:
    """The next frame that is not a change (a text frame)."""
    while True:
        opcode, payload = console.receive()
        if opcode != TEXT:
            return opcode, payload


def test_the_old_event_stream_is_gone(local_mode):
    assert local_mode.request("GET", "/events", headers={"Authorization": f"Bearer {API_TOKEN}"}).status == 404


@pytest.fixture(scope="module")
def quiet_local_mode():
    """A local mode of its own: nothing else going on in it (no earlier test's conversation steps)."""
    with start_local_mode() as running:
        yield running


def test_an_agent_is_told_only_of_changes_on_its_own_numbers(quiet_local_mode):
    local_mode = quiet_local_mode
    agent_id = f"dora-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
    directory = json.dumps({"agent_id": agent_id, "name": "Dora", "numbers": [NUMBER]}).encode()
    assert local_mode.request("POST", "/api/agents", directory, headers).status in (200, 201)
    admin, agent = RawSocket(local_mode, API_TOKEN), RawSocket(local_mode, f"local-agent-{agent_id}")
    try:
        assert admin.status == agent.status == 101

        customer_writes(local_mode, OTHER_NUMBER)
        admin.next_change("messages", "chats")  # pushed: the admin sees every number
        assert agent.nothing_within(2), agent.receive()  # the agent does not: not its number

        customer_writes(local_mode, NUMBER)
        agent.next_change("messages")  # its own number reaches it
    finally:
        admin.close()
        agent.close()
