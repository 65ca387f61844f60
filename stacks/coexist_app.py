"""Builds the Coexist app's stacks: used by app.py (the CDK CLI) and by the infrastructure tests."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Environment, Tags

from stacks import conversations_stack
from stacks.config import CoexistConfig
from stacks.console_edge_stack import EDGE_REGION, ConsoleEdgeStack
from stacks.console_stack import ConsoleStack
from stacks.constructs import crm_events, nag, reminders
from stacks.constructs.service_function import ServiceFunction
from stacks.compliance_stack import ComplianceStack
from stacks.conversations_stack import ConversationsStack
from stacks.data_stack import DataStack
from stacks.ingress_stack import IngressStack
from stacks.live_stack import LiveStack
from stacks.operations_stack import OperationsStack
from stacks.outbound_stack import OutboundStack


@dataclass(frozen=True)
class CoexistStacks:
    config: CoexistConfig
    data: DataStack
    ingress: IngressStack
    outbound: OutboundStack
    conversations: ConversationsStack
    operations: OperationsStack
    compliance: ComplianceStack
    console: ConsoleStack
    live: LiveStack
    console_edge: ConsoleEdgeStack | None  # None when console_web_acl_arn names an existing web ACL

    @property
    def all(self) -> tuple:
        stacks = (self.data, self.ingress, self.outbound, self.conversations, self.operations, self.compliance, self.console, self.live)
        return stacks + ((self.console_edge,) if self.console_edge else ())


def build(app: App) -> CoexistStacks:
    """Env-agnostic stacks (no account or region lookups): synth needs no credentials; `cdk deploy`
    takes the account and region from the caller's AWS profile."""
    config = CoexistConfig.from_context(app.node)
    name = f"Coexist-{config.stage}"
    data = DataStack(app, f"{name}-Data", config=config, description="Coexist: key, tables, archive, secrets")
    console_edge = None
    if not config.console_web_acl_arn:
        console_edge = ConsoleEdgeStack(
            app, f"{name}-ConsoleEdge", config=config, env=Environment(region=EDGE_REGION),
            description="Coexist: the agent console's CloudFront web ACL (us-east-1)",
        )
    console = ConsoleStack(
        app, f"{name}-Console", config=config,
        description="Coexist: the agent console's bucket, CloudFront distribution and security headers",
    )
    if console_edge:
        console.add_stack_dependency(console_edge)  # reads the web ACL's ARN from it at deploy time
    ingress = IngressStack(
        app, f"{name}-Ingress", config=config, data=data, console=console,
        description="Coexist: webhook, inbound queue, ingest, agent API",
    )
    outbound = OutboundStack(
        app, f"{name}-Outbound", config=config, data=data, ingress=ingress,
        description="Coexist: outbound FIFO queue, sender, templates sync",
    )
    conversations = ConversationsStack(
        app, f"{name}-Conversations", config=config, data=data, ingress=ingress, outbound=outbound,
        description="Coexist: conversation workflow (Step Functions), its function, Amazon Connect handoff",
    )
    operations = OperationsStack(
        app, f"{name}-Operations", config=config, data=data, ingress=ingress,
        description="Coexist: the app-inactivity watch (14-day rule), disconnection alarm",
    )
    compliance = ComplianceStack(
        app, f"{name}-Compliance", config=config, data=data, ingress=ingress,
        description="Coexist: the audit trail's immutable copy (Object Lock)",
    )
    live = LiveStack(
        app, f"{name}-Live", config=config, data=data, ingress=ingress, console=console,
        description="Coexist: the agent console's live channel (WebSocket) and its published files",
    )
    stacks = CoexistStacks(config, data, ingress, outbound, conversations, operations, compliance, console, live, console_edge)
    for stack in stacks.all:
        for function in (c for c in stack.node.find_all() if isinstance(c, ServiceFunction)):
            function.alarm_on_errors(ingress.alarms)  # every function, whichever stack it is in
            if function.service_name.removeprefix("coexist-") in crm_events.PUBLISHERS:
                crm_events.allow_publishing(function, config)
            if function.service_name == "coexist-api":  # POST / DELETE /api/reminders
                reminders.allow_scheduling(function, config)
            if function.service_name in conversations_stack.IDLE_TIMER_ACTIONS:  # the bot phases' idle timers
                conversations_stack.allow_idle_timers(function, config)
    for stack in stacks.all:
        Tags.of(stack).add("project", "coexist")
        Tags.of(stack).add("stage", config.stage)
        nag.check(stack)
    return stacks
