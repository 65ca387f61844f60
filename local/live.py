"""Live changes for the agent console: local mode's stand-in for the deployed WebSocket API.

Deployed, an API Gateway WebSocket API records each console's connection ($connect, behind an
authorizer that reads the ID token from the `token` query parameter) and a fan-out function, fed by
the keys-only streams of the chats and messages tables, posts each change to the connections whose
person may see its number, through the API's management endpoint. Here the gateway speaks the same
protocol on `LIVE_PATH` of the API's origin (local/websocket.py) with the same parts: the token in
the query string, checked by the API's own rules for local mode's tokens; the connection and the
numbers its person may see recorded in the emulated connections table (coexist/live/connections.py);
the emulated tables' own streams followed as Lambda's event source would (`StreamFollower`); and
coexist/live/fanout.py posting through `LocalManagement`, this process's management endpoint.

An event names no chat, customer or message — only that a table changed — so the console re-reads
what it shows through the API, with the caller's own token and permissions, as it does after a
dropped connection.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import ClientError

from local import websocket

log = logging.getLogger("local")
LIVE_PATH = "/live"
FOLLOW_EVERY_S = 0.25  # how often the streams are read (Lambda polls a stream's shard about 4 times a second)


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


class StreamFollower:
    """Reads the emulated tables' streams from the latest record on, and hands each new batch to
    `push` (what Lambda's DynamoDB event source does for the deployed fan-out)."""

    def __init__(self, client, stream_arns: list[str], push: Callable[[list[dict]], object], every_s: float = FOLLOW_EVERY_S,
                 forget: Callable[[str], None] = lambda iterator: None):
        self._client = client
        self._push = push
        self._forget = forget  # told of each shard iterator used up
        self._every_s = every_s
        self._iterators = {arn: self._latest(arn) for arn in stream_arns}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="live-streams", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=2)

    def _latest(self, arn: str) -> str:
        shard = self._client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        return self._client.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]

    def read_once(self) -> list[dict]:
        """The records written since the last read, each marked with its stream, as Lambda hands them.
        A stream that cannot be read is followed again from its latest record (what was written in
        between is not pushed: consoles re-read every few seconds), rather than failing every read
        from then on with the same iterator."""
        records = []
        for arn, iterator in list(self._iterators.items()):
            try:
                page = self._client.get_records(ShardIterator=iterator)
            except Exception:  # noqa: BLE001 - logged, and the stream followed again
                log.exception("a table's stream could not be read; following it again from its latest record")
                self._iterators[arn] = self._latest(arn)
                continue
            self._iterators[arn] = page["NextShardIterator"]
            self._forget(iterator)
            records += [{**record, "eventSourceARN": arn} for record in page["Records"]]
        return records

    def _follow(self) -> None:
        while not self._stopped.wait(self._every_s):
            try:
                records = self.read_once()
                if records:
                    self._push(records)
            except Exception:  # a failed push is not worth more: consoles re-read every few seconds
                log.exception("live changes could not be pushed")


class LiveChannel:
    """Serves `GET LIVE_PATH` (a WebSocket upgrade) for the gateway; `follower` pushes the changes."""

    def __init__(self, connections, management: LocalManagement, authorise, follower: StreamFollower | None = None) -> None:
        self.connections = connections  # coexist.live.connections.ConnectionStore
        self.management = management
        self.authorise = authorise  # (token) -> (caller id, numbers it may see or None for all), or None
        self.follower = follower

    def stop(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        self.management.close_all()

    def serve(self, handler) -> None:
        """One console's connection, from the opening handshake to its close."""
        handler.close_connection = True  # after a WebSocket (or a refusal), this TCP connection is done
        token = (parse_qs(urlsplit(handler.path).query).get("token") or [""])[0]
        if not token:  # API Gateway: no identity source, no authorizer call
            return _refuse(handler, HTTPStatus.UNAUTHORIZED, "Unauthorized")
        caller = self.authorise(token)
        if caller is None:  # the authorizer's Deny
            return _refuse(handler, HTTPStatus.FORBIDDEN, "Forbidden")
        try:
            key = websocket.check_handshake(handler.command, handler.headers)
        except websocket.BadHandshake as error:
            return _refuse(handler, HTTPStatus.BAD_REQUEST, str(error))
        user, numbers = caller
        connection = websocket.Connection(handler.rfile, handler.wfile)
        connection_id = uuid.uuid4().hex
        try:
            # As API Gateway does, $connect completes before the console hears 101: a change made
            # right after the console opened reaches it. A change pushed meanwhile waits for the 101.
            with connection.holding_frames():
                self.management.attach(connection_id, connection)
                self.connections.add(connection_id, user, time.time(), numbers)  # $connect
                handler.send_response(HTTPStatus.SWITCHING_PROTOCOLS)
                handler.send_header("Upgrade", "websocket")
                handler.send_header("Connection", "Upgrade")
                handler.send_header("Sec-WebSocket-Accept", websocket.accept_key(key))
                handler.end_headers()
                handler.wfile.flush()
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
    checked by the API's own rules (coexist.authorization): the caller's id and the numbers it may
    see (None: every number, an admin's), or None when refused. The settings are read at each
    connect (`api_settings()`): local mode settles them after wiring this."""
    from coexist.authorization import Credentials, Forbidden, Unauthorized, principal_of
    from coexist.domain.access import Role
    from coexist.reads import BadRequest

    def authorise(token: str) -> tuple[str, frozenset[str] | None] | None:
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
        numbers = None if principal.role is Role.ADMIN else principal.numbers
        return principal.agent_id or "admin", numbers

    return authorise


def serve_console_changes(session) -> LiveChannel:
    """Local mode's wiring: the API's settings and agent directory decide who may listen and which
    numbers each listener sees; the streams of the tables the data stack streams to the live
    channel (keys only) feed the deployed fan-out's code."""
    from coexist import resources, wiring
    from coexist.live.fanout import Fanout
    from coexist.settings import settings

    management = LocalManagement()
    connections = wiring.live_connections()
    fanout = Fanout(connections, management, wiring.live_changed_numbers())
    dynamodb = session.client("dynamodb")
    arns = [dynamodb.describe_table(TableName=os.environ[spec.env_var])["Table"]["LatestStreamArn"]
            for spec in resources.TABLES if spec.stream_view_type == "KEYS_ONLY"]
    # (The SDK's account-based endpoint for stream ARNs is not one the emulator answers.)
    streams = session.client("dynamodbstreams", endpoint_url=f"https://streams.dynamodb.{session.region_name}.amazonaws.com")
    follower = StreamFollower(streams, arns, fanout.push, forget=forget_shard_iterator)
    channel = LiveChannel(connections, management, token_authoriser(settings, wiring.agents().get), follower)
    follower.start()
    return channel


def forget_shard_iterator(iterator: str) -> None:
    """The emulator keeps every shard iterator it hands out, and streams read four times a second
    would pile them up for as long as local mode runs: drop each one once it is used."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    from local.emulator import REGION

    dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][REGION].shard_iterators.pop(iterator, None)
