"""DynamoDB tables built from `coexist.resources.TABLES`, the one place their keys are declared."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from coexist.resources import TABLES, Key, TableSpec
from constructs import Construct

from stacks.config import CoexistConfig

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _attribute(key: Key | None) -> dynamodb.Attribute | None:
    return dynamodb.Attribute(name=key.name, type=_TYPES[key.type]) if key else None


class DomainTables(Construct):
    """One on-demand, CMK-encrypted, point-in-time-recoverable table per spec.

    `by_env_var` maps each spec's environment variable (NUMBERS_TABLE, ...) to its table, which is
    how functions are told the generated table names.
    """

    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey) -> None:
        super().__init__(scope, id)
        self.by_env_var: dict[str, dynamodb.Table] = {}
        for spec in TABLES:
            self.by_env_var[spec.env_var] = self._table(spec, config, key)

    def _table(self, spec: TableSpec, config: CoexistConfig, key: kms.IKey) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.logical_id,
            table_name=config.table_name(spec.logical_id),
            partition_key=_attribute(spec.partition_key),
            sort_key=_attribute(spec.sort_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=config.deletion_protection,
            time_to_live_attribute=spec.ttl_attribute,
            stream=dynamodb.StreamViewType.KEYS_ONLY if spec.keys_stream else None,
            # Chats, messages and consent evidence are the business's records: never dropped by a stack update.
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_attribute(index.partition_key),
                sort_key=_attribute(index.sort_key),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        return table

    @property
    def tables(self) -> list[dynamodb.Table]:
        return list(self.by_env_var.values())

    @staticmethod
    def referenced_by_name(
        scope: Construct, *, config: CoexistConfig, key: kms.IKey
    ) -> dict[str, dynamodb.ITable]:
        """The same tables as seen from another stack: by name, with their indexes and key, so
        grants cover `index/*` and KMS without a cross-stack export."""
        return {
            spec.env_var: dynamodb.Table.from_table_attributes(
                scope,
                f"{spec.logical_id}Table",
                table_name=config.table_name(spec.logical_id),
                encryption_key=key,
                global_indexes=[index.name for index in spec.indexes],
            )
            for spec in TABLES
        }
