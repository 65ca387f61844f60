"""Local mode's live changes for the console (GET /events): authorised like the API, then a
Server-Sent Events stream that says when the functions changed records, naming nothing."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import API_TOKEN, fixture_bytes

pytestmark = pytest.mark.e2e


def connect(local_mode, token: str | None):
    url = urlsplit(local_mode.http)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    headers = {"Accept": "text/event-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request("GET", "/events", headers=headers)
    return connection, connection.getresponse()


def next_event(reply) -> str:
    lines = []
    while True:
        line = reply.fp.readline().decode()
        if line in ("\n", "") and lines:
            return "".join(lines)
        if line not in ("\n", ""):
            lines.append(line)
        if line == "":
            return "".join(lines)


def test_the_stream_needs_the_api_token(local_mode):
    for token in (None, "not-the-token"):
        connection, reply = connect(local_mode, token)
        assert reply.status == 401
        assert json.loads(reply.read())["code"] == "unauthorized"
        connection.close()


def test_a_customer_message_is_announced_without_saying_what_it_was(local_mode):
    connection, reply = connect(local_mode, API_TOKEN)
    try:
        assert reply.status == 200 and reply.getheader("Content-Type") == "text/event-stream"
        assert "event: ready" in next_event(reply)
        assert local_mode.post_webhook(fixture_bytes("meta_docs/messages_text.json")).status == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            block = next_event(reply)
            if block.startswith("data: "):
                event = json.loads(block[len("data: "):])
                assert set(event) == {"type", "by", "at"} and event["type"] == "changed"  # no chat, number or text
                if event["by"] == "coexist-ingest":
                    return
        pytest.fail("no change was announced")
    finally:
        connection.close()
