"""Templates sync: every configured account's templates from Meta into the templates table."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from coexist import wiring
from coexist.observability import lambda_entry, powertools
from coexist.outbound.template_sync import configured_waba_ids, sync_templates
from coexist.settings import settings

logger, tracer, metrics = powertools("coexist-templates")
# Deployed, the access token comes from Secrets Manager: without its ARN the function does not start.
settings().require_secret_arns("access_token")


@lambda_entry(logger, tracer, metrics)
def lambda_handler(event: dict, context) -> dict:
    waba_ids = (event or {}).get("waba_ids") or configured_waba_ids(settings().waba_ids)
    results = sync_templates(wiring.graph_api(), wiring.templates(), waba_ids)
    metrics.add_metric(name="TemplatesSynced", unit=MetricUnit.Count, value=sum(r["templates"] for r in results))
    logger.info("templates synced", extra={"accounts": results})
    return {"synced": results}
