"""The operations dashboard: one CloudWatch page for whoever runs the deployment, and the ingest-lag
alarm (docs/OPERATIONS.md says what each graph means and what to do about each alarm).

Custom metrics are read by the names the functions emit through Powertools (namespace
`coexist.resources.METRICS_NAMESPACE`, dimension `service`); the infrastructure tests hold the
dashboard to that: every custom metric it shows is one the code emits.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig

PERIOD = Duration.minutes(5)
INGEST_LAG_ALARM_S = 300  # the oldest webhook waiting for ingest: agents see messages this late

WEBHOOK_OUTCOMES = ("WebhookQueued", "WebhookQuarantined", "WebhookRejected", "WebhookFailed")
SEND_OUTCOMES = ("SenderSent", "SenderFailed", "SenderSkipped", "SenderDeferred", "SenderRetried", "SenderParked",
                 "SenderCrashed", resources.SENDER_OUTCOME_UNKNOWN_METRIC)
META_THROTTLES = ("SenderMetaRateLimited130429", "SenderMetaPairRateLimited131056")
CONVERSATION_STATES = ("ConversationStarted", "ConversationQueued", "ConversationAssigned", "ConversationTakenOver",
                       "ConversationHandedToConnect", "ConversationClosed")
UNASSIGNED = ("ConversationUnassigned", "WindowClosingWarning")
COSTS = ("MessageCostMarketing", "MessageCostUtility", "MessageCostAuthentication", "MessageCostService", "MessageCostOther")


def emitted(service: str, name: str, statistic: str = "Sum") -> cloudwatch.Metric:
    """A metric a Coexist function emits (Powertools EMF: the `service` dimension names the function)."""
    return cloudwatch.Metric(namespace=resources.METRICS_NAMESPACE, metric_name=name,
                             dimensions_map={"service": f"coexist-{service}"}, statistic=statistic, period=PERIOD,
                             label=name)


def queue_depth(queue_name: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace="AWS/SQS", metric_name="ApproximateNumberOfMessagesVisible",
                             dimensions_map={"QueueName": queue_name}, statistic="Maximum", period=Duration.minutes(1),
                             label=label)


class OperationsDashboard(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, webhook_function, inbound_queue: sqs.IQueue,
        inbound_dead_letters: sqs.IQueue, other_dead_letters: dict[str, sqs.IQueue], alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        ingest_lag = inbound_queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1), statistic="Maximum")
        self.ingest_lag_alarm = cloudwatch.Alarm(
            self, "IngestLagAlarm",
            alarm_description=f"The oldest webhook has waited over {INGEST_LAG_ALARM_S} s for ingest: agents see "
            "messages late. docs/OPERATIONS.md: check ingest errors and throttles, raise ingest_max_concurrency.",
            metric=ingest_lag,
            threshold=INGEST_LAG_ALARM_S,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=5,
            datapoints_to_alarm=3,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.ingest_lag_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))

        state_machine_arn = stack.format_arn(service="states", resource="stateMachine",
                                             resource_name=config.conversation_state_machine_name,
                                             arn_format=ArnFormat.COLON_RESOURCE_NAME)
        outbound_dlq = config.outbound_queue_name.removesuffix(".fifo") + "-dlq.fifo"
        dead_letters = [queue_depth(inbound_dead_letters.queue_name, "inbound"), queue_depth(outbound_dlq, "outbound")]
        dead_letters += [queue_depth(queue.queue_name, name) for name, queue in other_dead_letters.items()]

        def graph(title: str, metrics: list, width: int = 8, **kwargs) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=6, **kwargs)

        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard",
            dashboard_name=f"{config.prefix}-operations",
            default_interval=Duration.hours(24),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# Coexist {config.stage}\nWhat each graph means and what to do about each alarm: "
                "docs/OPERATIONS.md. Costs are in the rate card's currency.", width=24, height=2),
        )
        self.dashboard.add_widgets(
            graph("Webhooks by outcome", [emitted("webhook", n) for n in WEBHOOK_OUTCOMES], stacked=True),
            graph("Webhook latency (ms)", [
                webhook_function.metric_duration(period=Duration.minutes(1), statistic="p50", label="p50"),
                webhook_function.metric_duration(period=Duration.minutes(1), statistic="p99", label="p99"),
            ], left_annotations=[cloudwatch.HorizontalAnnotation(value=250, label="Meta's median target")]),
            graph("Ingest lag: the oldest webhook waiting (s)", [ingest_lag], left_annotations=[
                cloudwatch.HorizontalAnnotation(value=INGEST_LAG_ALARM_S, label="alarm")]),
        )
        self.dashboard.add_widgets(
            graph("Dead-letter queues (messages)", dead_letters),
            graph("Sends by outcome", [emitted("sender", n) for n in SEND_OUTCOMES], stacked=True),
            graph("Meta throughput refusals (130429, 131056) and open circuits",
                  [emitted("sender", n) for n in (*META_THROTTLES, "SenderCircuitOpened")]),
        )
        self.dashboard.add_widgets(
            graph("Conversations by step", [emitted("conversation", n) for n in CONVERSATION_STATES]),
            graph("Unassigned waits and window warnings", [emitted("conversation", n) for n in UNASSIGNED]),
            graph("Cost by category", [emitted("ingest", n) for n in COSTS], stacked=True),
        )
        self.dashboard.add_widgets(
            graph("Ingest", [emitted("ingest", n) for n in (
                "IngestMessages", "IngestStatuses", "IngestDuplicates", "IngestRecordFailed", "IngestQuarantined")], width=12),
            graph("Conversation workflow executions", [
                cloudwatch.Metric(namespace="AWS/States", metric_name=name, dimensions_map={"StateMachineArn": state_machine_arn},
                                  statistic="Sum", period=PERIOD, label=name)
                for name in ("ExecutionsStarted", "ExecutionsFailed", "ExecutionsTimedOut")], width=12),
        )
