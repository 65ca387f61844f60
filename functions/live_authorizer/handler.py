"""The live channel's $connect authorizer: the console's Cognito ID token, from the `token` query
parameter (a browser cannot set headers on a WebSocket), checked as the REST API's authorizer
checks it, and the user in one of Coexist's groups. The context names the numbers the user may see
(an admin: every number; others: their agent directory numbers), which decide the changes the
connection receives.

A refusal is a Deny policy (API Gateway answers 403), never an error: a stale token in a console
is ordinary, not a fault to page about. Nothing of the token is logged.
"""

from __future__ import annotations

from coexist import wiring
from coexist.domain import access
from coexist.authorization import directory_numbers
from coexist.live.connections import numbers_to_context
from coexist.live.tokens import InvalidToken
from coexist.observability import lambda_entry, powertools

logger, tracer, _ = powertools("coexist-live-authorizer")


def _policy(principal: str, effect: str, resource: str, context: dict | None = None) -> dict:
    answer = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context:
        answer["context"] = context
    return answer


def _groups(claims: dict) -> list[str]:
    groups = claims.get("cognito:groups") or []
    return [groups] if isinstance(groups, str) else list(groups)


@lambda_entry(logger, tracer)
def lambda_handler(event: dict, context) -> dict:
    resource = event["methodArn"]
    token = (event.get("queryStringParameters") or {}).get("token", "")
    try:
        claims = wiring.id_token_verifier().verify(token)
    except InvalidToken as refusal:
        logger.info("live connection refused", extra={"reason": str(refusal)})
        return _policy("anonymous", "Deny", resource)
    role = access.role_of(_groups(claims))
    if role is None:
        logger.info("live connection refused", extra={"reason": "in no Coexist group"})
        return _policy(claims["sub"], "Deny", resource)
    if role is access.Role.ADMIN:
        numbers = None
    else:  # the agent as the REST API names it (coexist.authorization.principal_of)
        numbers = directory_numbers(wiring.live_directory().get(str(claims.get("cognito:username") or claims["sub"])))
    return _policy(claims["sub"], "Allow", resource, {"sub": claims["sub"], "numbers": numbers_to_context(numbers)})
