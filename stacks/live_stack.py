"""The agent console's live channel and its published files (deployed last: the console's
config.json names the API, the live channel and the sign-in, which must exist first)."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.console_stack import ConsoleStack
from stacks.constructs.console_content import ConsoleContent, deployed_config
from stacks.constructs.live_channel import LiveChannel
from stacks.data_stack import DataStack
from stacks.ingress_stack import IngressStack


class LiveStack(Stack):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, data: DataStack, ingress: IngressStack,
        console: ConsoleStack, **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        key = data.key
        streams = {
            spec.logical_id: dynamodb.Table.from_table_attributes(
                self, f"{spec.logical_id}Stream", table_name=config.table_name(spec.logical_id),
                table_stream_arn=data.tables.by_env_var[spec.env_var].table_stream_arn, encryption_key=key,
            )
            for spec in resources.TABLES if spec.stream_view_type == "KEYS_ONLY"
        }
        connections = dynamodb.Table.from_table_attributes(
            self, "ConnectionsTable", table_name=config.table_name(resources.CONNECTIONS.logical_id), encryption_key=key,
        )
        agents = dynamodb.Table.from_table_attributes(
            self, "AgentsTable", table_name=config.table_name(resources.AGENTS.logical_id), encryption_key=key,
        )
        self.channel = LiveChannel(
            self, "Channel", config=config, key=key, layer=ingress.layer, connections=connections, streams=streams,
            agents=agents,
            user_pool_id=ingress.rest.agents.user_pool_id, client_id=ingress.rest.console_client.user_pool_client_id,
        )
        hosting = console.hosting
        self.content = ConsoleContent(
            self, "Console",
            bucket=s3.Bucket.from_bucket_attributes(
                self, "ConsoleBucket", bucket_name=config.console_bucket_name(Aws.ACCOUNT_ID, Aws.REGION),
                encryption_key=hosting.key,
            ),
            distribution=hosting.distribution,
            bucket_finding_name=config.console_bucket_name("<AWS::AccountId>", "<AWS::Region>"),
            config=deployed_config(
                region=Aws.REGION,
                api_url=ingress.rest.rest_api.url,  # ends in "/": the console joins paths to it
                live_url=self.channel.url,
                sign_in_url=ingress.console_sign_in.base_url,
                client_id=ingress.rest.console_client.user_pool_client_id,
                numbers=[n.phone_number_id for n in config.phone_numbers],
            ),
        )
        CfnOutput(self, "LiveUrl", value=self.channel.url, description="The console's live channel (WebSocket)")
