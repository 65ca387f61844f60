"""Meta's webhook endpoint: the subscription handshake (GET) and signed notifications (POST)."""

from __future__ import annotations

import base64
import hmac

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.resources import METRICS_NAMESPACE
from coexist.intake import Outcome
from coexist.settings import settings

logger = Logger(service="coexist-webhook")
tracer = Tracer(service="coexist-webhook")
metrics = Metrics(namespace=METRICS_NAMESPACE, service="coexist-webhook")
app = APIGatewayRestResolver()
# Deployed, the secrets come from Secrets Manager: without their ARNs the function does not start.
settings().require_secret_arns("app_secret", "verify_token")


@app.get("/webhook")
def handshake() -> Response:
    query = app.current_event.query_string_parameters or {}
    token = query.get("hub.verify_token") or ""
    expected = settings().secret("verify_token")
    if query.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
        metrics.add_metric(name="WebhookVerified", unit=MetricUnit.Count, value=1)
        return Response(200, content_types.TEXT_PLAIN, query.get("hub.challenge", ""))
    metrics.add_metric(name="WebhookVerificationRefused", unit=MetricUnit.Count, value=1)
    logger.warning("webhook verification refused")
    return Response(403, content_types.TEXT_PLAIN, "Forbidden")


@app.post("/webhook")
def notification() -> Response:
    event = app.current_event
    body = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode("utf-8")
    signature = event.headers.get("X-Hub-Signature-256")
    try:
        receipt = wiring.intake().receive(body, signature, settings().secret("app_secret"))
    except Exception:
        # Not archived or not queued: answer an error so Meta delivers it again (it retries for days).
        logger.exception("webhook not stored", extra={"bytes": len(body)})
        metrics.add_metric(name="WebhookFailed", unit=MetricUnit.Count, value=1)
        return Response(503, content_types.TEXT_PLAIN, "Temporarily unavailable")
    metrics.add_metric(name=f"Webhook{receipt.outcome.value.title()}", unit=MetricUnit.Count, value=1)
    if receipt.outcome is Outcome.REJECTED:
        logger.warning("webhook signature rejected", extra={"bytes": len(body)})
        return Response(401, content_types.TEXT_PLAIN, "Invalid signature")
    logger.info("webhook accepted", extra={"outcome": receipt.outcome.value, "bytes": len(body), "archive_key": receipt.archive_key})
    return Response(200, content_types.TEXT_PLAIN, "OK")




@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict, context) -> dict:
    return app.resolve(event, context)
