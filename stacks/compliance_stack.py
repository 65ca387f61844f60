"""What a compliance officer relies on: the audit trail's immutable copy (the audit table's stream
into an Object Lock bucket in compliance mode) and customers' exports. The audit table itself is one of the data stack's
tables; this stack follows its stream (the one value it takes from the data stack by reference:
a stream's ARN carries a creation label no name can predict)."""

from __future__ import annotations

from aws_cdk import Aws, Stack
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs.audit_archive import AuditArchive
from stacks.constructs.customer_exports import CustomerExports
from stacks.constructs.domain_tables import DomainTables
from stacks.constructs.shared_layer import shared_layer
from stacks.data_stack import DataStack
from stacks.ingress_stack import IngressStack


class ComplianceStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, data: DataStack, ingress: IngressStack, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.add_stack_dependency(data)
        self.add_stack_dependency(ingress)
        self.layer = shared_layer(self)
        self.audit = AuditArchive(
            self, "AuditArchive", config=config, key=data.key,
            table=data.tables.by_env_var[resources.AUDIT.env_var],
            layer=self.layer, alarm_topic=ingress.alarms,
            bucket_name=config.audit_bucket_name(Aws.ACCOUNT_ID, Aws.REGION),
        )
        # Customers' exports (the agent API queues them and hands out their links by name).
        self.exports = CustomerExports(
            self, "Exports", config=config, key=data.key,
            tables=DomainTables.referenced_by_name(self, config=config, key=data.key),
            layer=self.layer, alarm_topic=ingress.alarms,
            bucket_name=config.exports_bucket_name(Aws.ACCOUNT_ID, Aws.REGION),
            access_logs=self.audit.locked.access_logs,
        )
