"""The live channel's $connect and $disconnect: record and forget a console's connection. The
authorizer has already checked the token and passes the user's subject and the numbers the user
may see in its context."""

from __future__ import annotations

import time


from coexist import wiring
from coexist.live.connections import numbers_from_context
from coexist.observability import lambda_entry, powertools

logger, tracer, _ = powertools("coexist-live-connections")


@lambda_entry(logger, tracer)
def lambda_handler(event: dict, context) -> dict:
    request = event["requestContext"]
    route, connection_id = request["routeKey"], request["connectionId"]
    connections = wiring.live_connections()
    if route == "$connect":
        authorizer = request.get("authorizer") or {}
        connections.add(connection_id, authorizer.get("sub", ""), time.time(), numbers_from_context(authorizer.get("numbers")))
    elif route == "$disconnect":
        connections.remove(connection_id)
    else:  # the API has no other route; a message from a console is not expected
        return {"statusCode": 400}
    logger.info("live connection", extra={"route": route})
    return {"statusCode": 200}
