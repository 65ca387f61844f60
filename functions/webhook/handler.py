"""Meta's webhook endpoint: the subscription handshake (GET) and signed notifications (POST).

Two routes on one resource: the handler reads API Gateway's proxy event itself rather than through
an HTTP router, which would cost this function more at cold start than everything it does."""

from __future__ import annotations

import base64
import hmac

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.intake import Outcome
from coexist.observability import lambda_entry, tracer_of
from coexist.resources import METRICS_NAMESPACE
from coexist.settings import settings

logger = Logger(service="coexist-webhook")
tracer = tracer_of("coexist-webhook")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-webhook")
# Deployed, the secrets come from Secrets Manager: without their ARNs the function does not start.
settings().require_secret_arns("app_secret", "verify_token")


def _text(status: int, text: str) -> dict:
    """A REST API proxy response with a plain-text body."""
    return {"statusCode": status, "multiValueHeaders": {"Content-Type": ["text/plain"]}, "body": text, "isBase64Encoded": False}


def _header(event: dict, name: str) -> str | None:
    """A request header, by name in any case (HTTP header names are case-insensitive)."""
    wanted = name.lower()
    return next((value for key, value in (event.get("headers") or {}).items() if key.lower() == wanted), None)


def handshake(event: dict) -> dict:
    query = event.get("queryStringParameters") or {}
    token = query.get("hub.verify_token") or ""
    expected = settings().secret("verify_token")
    if query.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
        metrics.add_metric(name="WebhookVerified", unit=MetricUnit.Count, value=1)
        return _text(200, query.get("hub.challenge", ""))
    metrics.add_metric(name="WebhookVerificationRefused", unit=MetricUnit.Count, value=1)
    logger.warning("webhook verification refused")
    return _text(403, "Forbidden")


def notification(event: dict) -> dict:
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    signature = _header(event, "X-Hub-Signature-256")
    try:
        receipt = wiring.intake().receive(body, signature, settings().secret("app_secret"))
    except Exception:
        # Not archived or not queued: answer an error so Meta delivers it again (it retries for days).
        logger.exception("webhook not stored", extra={"bytes": len(body)})
        metrics.add_metric(name="WebhookFailed", unit=MetricUnit.Count, value=1)
        return _text(503, "Temporarily unavailable")
    metrics.add_metric(name=f"Webhook{receipt.outcome.value.title()}", unit=MetricUnit.Count, value=1)
    if receipt.outcome is Outcome.REJECTED:
        logger.warning("webhook signature rejected", extra={"bytes": len(body)})
        return _text(401, "Invalid signature")
    logger.info("webhook accepted", extra={"outcome": receipt.outcome.value, "bytes": len(body), "archive_key": receipt.archive_key})
    return _text(200, "OK")


ROUTES = {"GET": handshake, "POST": notification}


@lambda_entry(logger, tracer, metrics, correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict, context) -> dict:
    route = ROUTES.get(event.get("httpMethod", ""))
    if route is None:  # API Gateway sends only GET and POST /webhook here
        return _text(405, "Method Not Allowed")
    return route(event)
