"""Push a change event to every connected console through the WebSocket API's management endpoint."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from botocore.exceptions import ClientError

from coexist.live.connections import ConnectionStore

PARALLEL_POSTS = 8  # one post is one HTTPS call; a few at once keep a full room within a second


@dataclass(frozen=True)
class Delivery:
    sent: int = 0
    gone: int = 0  # connections API Gateway no longer has (410): removed from the store
    failed: int = 0  # any other error: that console catches up by itself (see console/js/live.js)


class Fanout:
    def __init__(self, connections: ConnectionStore, management) -> None:
        self._connections = connections
        self._management = management  # a boto3 `apigatewaymanagementapi` client for the API's stage

    def publish(self, event: dict) -> Delivery:
        data = json.dumps(event, separators=(",", ":")).encode()
        with ThreadPoolExecutor(PARALLEL_POSTS) as pool:
            outcomes = list(pool.map(lambda connection_id: self._post(connection_id, data), self._connections.ids()))
        return Delivery(
            sent=outcomes.count("sent"), gone=outcomes.count("gone"), failed=outcomes.count("failed")
        )

    def _post(self, connection_id: str, data: bytes) -> str:
        try:
            self._management.post_to_connection(ConnectionId=connection_id, Data=data)
            return "sent"
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "GoneException":
                self._connections.remove(connection_id)
                return "gone"
            return "failed"
