"""The agent API (read side): chats, messages and numbers, as JSON with bearer auth."""

from __future__ import annotations

import hmac

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths

from coexist import wiring
from coexist.reads import BadRequest, NotFound
from coexist.settings import settings

logger = Logger(service="coexist-api")
tracer = Tracer(service="coexist-api")
app = APIGatewayRestResolver(strip_prefixes=[])


class Unauthorized(Exception):
    pass


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, content_types.APPLICATION_JSON, {"code": code, "message": message})


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return _error(404, "not_found", str(error))


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _error(400, "bad_request", str(error))


@app.exception_handler(Unauthorized)
def _unauthorized(error: Unauthorized) -> Response:
    response = _error(401, "unauthorized", str(error))
    response.headers["WWW-Authenticate"] = 'Bearer realm="coexist"'
    return response


@app.not_found
def _no_route(_exception) -> Response:
    return _error(404, "not_found", "no such route")


def _authenticate(app: APIGatewayRestResolver, next_middleware):
    config = settings()
    if config.api_auth == "cognito":
        # API Gateway's Cognito authorizer already validated the JWT; refuse if it did not run.
        if not (app.current_event.request_context.authorizer or {}).get("claims"):
            raise Unauthorized("a valid bearer token is required")
    else:
        header = app.current_event.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_token.encode()):
            raise Unauthorized("a valid bearer token is required")
    return next_middleware(app)


app.use(middlewares=[_authenticate])



def _query(name: str) -> str | None:
    return (app.current_event.query_string_parameters or {}).get(name)


@app.get("/api/chats")
def list_chats():
    return wiring.inbox_reader().chats(_query("phone_number_id"), _query("limit"), _query("cursor"))


@app.get("/api/chats/<chat_id>")
def get_chat(chat_id: str):
    return wiring.inbox_reader().chat(chat_id)


@app.get("/api/chats/<chat_id>/messages")
def list_messages(chat_id: str):
    return wiring.inbox_reader().messages(chat_id, _query("limit"), _query("cursor"))


@app.get("/api/numbers/<phone_number_id>")
def get_number(phone_number_id: str):
    return wiring.inbox_reader().number(phone_number_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
