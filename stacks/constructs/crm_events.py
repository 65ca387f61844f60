"""The domain events' EventBridge bus, and the rule that delivers them to a CRM's webhook.

The bus (`coexist-<stage>-events`, encrypted with the Coexist key) receives every domain event
(layers/coexist/events, docs/EVENTS.md). A team connects a CRM without code: with
`crm_webhook_url` and `crm_webhook_secret_arn` in cdk.json, a rule sends every event to that URL
through an EventBridge API destination (a Connection holding the CRM's token, sent in the
`crm_webhook_header` header), with retries and a dead-letter queue. Without them no rule exists
and nothing leaves the account.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, SecretValue
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import nag

# Functions whose work changes what a CRM hears of (messages, statuses, chats, consent, campaigns).
PUBLISHERS = ("ingest", "api", "sender", "conversation", "connect-events", "campaigns")
CRM_RATE_PER_SECOND = 10  # what a CRM's webhook is sent at most; EventBridge queues and retries the rest


def bus_arn(config: CoexistConfig) -> str:
    return f"arn:{Aws.PARTITION}:events:{Aws.REGION}:{Aws.ACCOUNT_ID}:event-bus/{config.event_bus_name}"


def allow_publishing(function, config: CoexistConfig) -> None:
    """Tell a function the bus and let it put events there (and nowhere else)."""
    function.function.add_environment(resources.EVENT_BUS_ENV, config.event_bus_name)
    if config.crm_events_include_text:
        function.function.add_environment("CRM_EVENTS_INCLUDE_TEXT", "true")
    function.role.add_to_principal_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus_arn(config)]))


def failed_publishes() -> cloudwatch.MathExpression:
    """Events given up after their retries (`CrmEventsFailed`), summed over every publishing function:
    each counts them under its own `service` dimension, and an alarm cannot use a search expression."""
    using = {
        f"p{i}": cloudwatch.Metric(namespace=resources.METRICS_NAMESPACE, metric_name=resources.CRM_EVENTS_FAILED_METRIC,
                                   dimensions_map={"service": f"coexist-{publisher}"}, statistic="Sum", period=Duration.minutes(5))
        for i, publisher in enumerate(PUBLISHERS)
    }
    return cloudwatch.MathExpression(expression="SUM(METRICS())", using_metrics=using, period=Duration.minutes(5),
                                     label="CRM events given up")


class CrmEvents(Construct):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=config.event_bus_name, kms_key=key,
                                   description=f"Coexist {config.stage}: domain events for CRMs (docs/EVENTS.md)")
        self.to_crm: events.Rule | None = None
        if config.crm_webhook_url:
            self.to_crm = self._deliver_to_crm(config, key)

    def _deliver_to_crm(self, config: CoexistConfig, key: kms.IKey) -> events.Rule:
        connection = events.Connection(
            self, "CrmConnection",
            description="The CRM's webhook token (from the secret named by crm_webhook_secret_arn)",
            authorization=events.Authorization.api_key(
                config.crm_webhook_header, SecretValue.secrets_manager(config.crm_webhook_secret_arn)),
        )
        self.destination = events.ApiDestination(
            self, "CrmDestination", connection=connection, endpoint=config.crm_webhook_url,
            http_method=events.HttpMethod.POST, rate_limit_per_second=CRM_RATE_PER_SECOND,
            description="The CRM's webhook: every Coexist domain event, as EventBridge's JSON",
        )
        self.dead_letters = sqs.Queue(
            self, "CrmDeadLetters", encryption=sqs.QueueEncryption.KMS, encryption_master_key=key,
            enforce_ssl=True, retention_period=Duration.days(14),
        )
        nag.acknowledge(
            self.dead_letters, "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the CRM rule's target (events the CRM's webhook refused "
            "for 24 hours); a DLQ of its own would only move them once more.",
        )
        rule = events.Rule(
            self, "ToCrm", event_bus=self.bus, enabled=True,
            description="Every Coexist domain event to the CRM's webhook",
            event_pattern=events.EventPattern(source=[resources.EVENT_SOURCE]),
            targets=[targets.ApiDestination(
                self.destination, dead_letter_queue=self.dead_letters, retry_attempts=10, max_event_age=Duration.hours(24),
            )],
        )
        nag.acknowledge(
            self.destination.node.find_child("EventsRole").node.find_child("DefaultPolicy"), "HIPAA.Security-IAMNoInlinePolicy",
            "The API destination's invoke role policy CDK writes (events:InvokeApiDestination on this destination "
            "only); it belongs to that role alone and is deleted with it.",
        )
        return rule
