"""Local mode under a burst of clients, and restarted right after a stop.

A burst: two dozen clients connecting at the same moment (a console, a load test, the Meta sandbox's
status webhooks) must all be answered, none reset or left hanging because the listen backlog was full.
A restart: the connections of the run that just stopped linger in TIME_WAIT for up to a minute; the
new run must still start on the same ports.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request

import pytest

from local.gateway import Gateway, coexist_routes, serve
from local.lambdas import LocalFunction
from local.meta_sandbox import MetaSandbox
from local.runtime import _require_free_port
from tests.e2e.harness import start_local_mode

CLIENTS = 24


def _ok(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}


def _burst(address: tuple[str, int], start_serving) -> list[str]:
    """`CLIENTS` clients connect at once while the server is listening but not yet accepting (as when
    it is busy), then it starts accepting: returns what each client got ("200" or its error)."""
    barrier = threading.Barrier(CLIENTS)
    connected: list[socket.socket | None] = [None] * CLIENTS
    results = ["no answer"] * CLIENTS

    def connect(i: int) -> None:
        barrier.wait()
        try:
            # Shorter than the kernel's first SYN retransmission (1 s): a connection the backlog
            # refused shows up as a timeout here instead of a late success.
            connected[i] = socket.create_connection(address, timeout=0.8)
        except OSError as error:
            results[i] = type(error).__name__

    threads = [threading.Thread(target=connect, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop = start_serving()
    try:
        for i, sock in enumerate(connected):
            if sock is None:
                continue
            with sock:
                sock.settimeout(10)
                sock.sendall(f"GET /_sandbox/stats HTTP/1.1\r\nHost: {address[0]}\r\nConnection: close\r\n\r\n".encode())
                try:
                    reply = b""
                    while chunk := sock.recv(65536):
                        reply += chunk
                    results[i] = reply.split(b" ", 2)[1].decode() if reply else "empty reply"
                except OSError as error:
                    results[i] = type(error).__name__
    finally:
        stop()
    return results


def test_the_gateway_answers_two_dozen_clients_connecting_at_once():
    function = LocalFunction.of("api", _ok, 29)
    gateway = Gateway(("127.0.0.1", 0), coexist_routes(function, function))  # bound and listening

    # Any path answers (404 for this one): what matters is that every client got an answer.
    results = _burst(gateway.server_address[:2], lambda: serve(gateway))

    assert results == ["404"] * CLIENTS


def test_the_meta_sandbox_answers_two_dozen_clients_connecting_at_once():
    from local.meta_sandbox.server import SandboxServer

    sandbox = MetaSandbox(None, "secret", "token")
    server = SandboxServer(("127.0.0.1", 0), sandbox)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)

    def start():
        thread.start()

        def stop():
            server.shutdown()
            server.server_close()
            thread.join(5)

        return stop

    assert _burst(server.server_address[:2], start) == ["200"] * CLIENTS


def _leave_a_connection_in_time_wait() -> int:
    """A port whose listener is gone but whose last connection lingers in TIME_WAIT (the server side
    closed first, as an HTTP server does when it stops)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server's side closes first: it is the one left in TIME_WAIT
    client.recv(1)
    client.close()
    listener.close()
    return port


def test_a_port_whose_last_connections_are_in_time_wait_counts_as_free():
    port = _leave_a_connection_in_time_wait()
    with socket.socket() as plain:  # the state the probe used to trip on
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))

    _require_free_port("127.0.0.1", port, "--port")  # does not exit
    gateway = Gateway(("127.0.0.1", port), [])  # and the server itself binds it
    gateway.server_close()


def test_a_port_another_process_listens_on_is_refused():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(SystemExit, match="is not free"):
            _require_free_port("127.0.0.1", busy.getsockname()[1], "--port")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.e2e
def test_local_mode_restarts_on_the_same_ports_right_after_it_stopped():
    ports = ["--port", str(_free_port()), "--moto-port", str(_free_port())]
    with start_local_mode(args=ports) as first:
        for _ in range(3):  # connections the server closes, left in TIME_WAIT when it stops
            request = urllib.request.Request(first.http + "/nowhere", headers={"Connection": "close"})
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(request, timeout=10)
    with start_local_mode(args=ports) as second:
        assert second.http == first.http
        assert "is not free" not in second.output()
