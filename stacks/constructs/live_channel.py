"""The console's live channel, deployed: an API Gateway WebSocket API whose consoles are told when
a chat or a message changed (coexist/live).

- `$connect`, behind a Lambda authorizer that checks the console's Cognito ID token (in the `token`
  query parameter: browsers cannot set headers on a WebSocket) and reads the numbers its person
  may see from the agent directory, records the connection with them; `$disconnect` forgets it.
  The authorizer alone carries a second layer, the token libraries (joserfc, cryptography).
  There is no other route: consoles only listen.
- The fan-out function reads the keys-only streams of the chats and messages tables, reads back
  each changed item's number (one projected GetItem), and posts one small event per changed table
  and number to the connections that may see that number; it may post to this API's stage only.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import nag
from stacks.constructs.log_groups import encrypted_log_group
from stacks.constructs.service_function import ServiceFunction
from stacks.constructs.shared_layer import FUNCTIONS, live_auth_layer

TOKEN_SOURCE = "route.request.querystring.token"
# Consoles per deployment are few; these bound what a misbehaving client can make the API do.
THROTTLE_RATE, THROTTLE_BURST = 50, 100


class LiveChannel(Construct):
    def __init__(
        self, scope: Construct, id: str, *, config: CoexistConfig, key: kms.IKey, layer: lambda_.ILayerVersion,
        connections: dynamodb.ITable, streams: dict[str, dynamodb.ITable], user_pool_id: str, client_id: str,
        agents: dynamodb.ITable,
    ) -> None:
        super().__init__(scope, id)
        common = dict(layer=layer, key=key, log_retention_days=config.log_retention_days)
        stage_env = {"COEXIST_STAGE": config.stage}
        self.token_layer = live_auth_layer(self)

        self.authorizer_function = ServiceFunction(
            self, "Authorizer", code_dir=FUNCTIONS / "live_authorizer", service="live-authorizer",
            description="Live channel $connect: check the console's Cognito ID token",
            invoked_by="API Gateway's WebSocket authorizer, synchronously, once per connection",
            environment={
                **stage_env,
                resources.COGNITO_ISSUER_ENV: f"https://cognito-idp.{Aws.REGION}.amazonaws.com/{user_pool_id}",
                resources.CONSOLE_CLIENT_ID_ENV: client_id,
                resources.AGENTS.env_var: agents.table_name,
            },
            extra_layers=(self.token_layer,),
            **common,
        )
        iam.Grant.add_to_principal(
            grantee=self.authorizer_function.function, actions=["dynamodb:GetItem"], resource_arns=[agents.table_arn],
        )
        self._grant_key(self.authorizer_function, key, ["kms:Decrypt"])
        connection_env = {resources.CONNECTIONS.env_var: connections.table_name}
        self.connections_function = ServiceFunction(
            self, "Connections", code_dir=FUNCTIONS / "live_connections", service="live-connections",
            description="Live channel $connect/$disconnect: record and forget console connections",
            invoked_by="API Gateway's WebSocket routes, synchronously",
            environment={**stage_env, **connection_env},
            **common,
        )
        iam.Grant.add_to_principal(
            grantee=self.connections_function.function, actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
            resource_arns=[connections.table_arn],
        )
        self._grant_key(self.connections_function, key, ["kms:Decrypt", "kms:GenerateDataKey"])

        self.api = apigwv2.WebSocketApi(
            self, "Api",
            api_name=f"{config.prefix}-live",
            description="Coexist: live changes for the agent console",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Connect", self.connections_function.function),
                authorizer=authorizers.WebSocketLambdaAuthorizer(
                    "Token", self.authorizer_function.function, identity_source=[TOKEN_SOURCE]
                ),
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Disconnect", self.connections_function.function),
            ),
        )
        nag.acknowledge(
            self.api.node.find_child("$disconnect-Route"), "AwsSolutions-APIG4",
            "API Gateway accepts an authorizer on $connect only; $disconnect is called by API Gateway itself for a "
            "connection that was authorized when it opened.",
        )
        self.stage = apigwv2.WebSocketStage(
            self, "Stage", web_socket_api=self.api, stage_name=config.stage, auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=THROTTLE_RATE, burst_limit=THROTTLE_BURST),
        )
        self._log_access(config, key)
        self.url = self.stage.url  # wss://<api id>.execute-api.<region>.amazonaws.com/<stage>

        self.fanout_function = ServiceFunction(
            self, "Fanout", code_dir=FUNCTIONS / "live_fanout", service="live-fanout",
            description="Live channel: push chat and message changes to the connected consoles",
            invoked_by="the chats and messages tables' DynamoDB streams, one batch per shard at a time",
            timeout=Duration.seconds(30),
            unscoped_actions="DynamoDB ListStreams (what a stream event source needs)",
            environment={
                **stage_env, **connection_env,
                resources.LIVE_API_ID_ENV: self.api.api_id,
                resources.LIVE_STAGE_ENV: self.stage.stage_name,
                **{spec.env_var: streams[spec.logical_id].table_name for spec in resources.TABLES if spec.logical_id in streams},
            },
            **common,
        )
        fanout = self.fanout_function
        iam.Grant.add_to_principal(
            grantee=fanout.function, actions=["dynamodb:Scan", "dynamodb:DeleteItem"], resource_arns=[connections.table_arn],
        )
        iam.Grant.add_to_principal(  # a streamed chat's or message's number, read back by its key
            grantee=fanout.function, actions=["dynamodb:GetItem"], resource_arns=[t.table_arn for t in streams.values()],
        )
        self._grant_key(fanout, key, ["kms:Decrypt"])
        fanout.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["execute-api:ManageConnections"],
            resources=[Stack.of(self).format_arn(
                service="execute-api", resource=self.api.api_id, resource_name=f"{self.stage.stage_name}/POST/@connections/*"
            )],
        ))
        fanout.acknowledge_wildcard(
            f"Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<{self._logical_id(self.api)}>/{config.stage}/POST/@connections/*",
            "Posting to any connection of this one API's stage: connection ids are made by API Gateway as consoles connect.",
        )
        for name, table in streams.items():
            fanout.function.add_event_source(event_sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.LATEST,  # a console wants what changes from now on
                batch_size=100,
                max_batching_window=Duration.seconds(0),  # an agent is waiting to see it
                retry_attempts=2,  # a failed push is not worth more: consoles re-read every few seconds anyway
                bisect_batch_on_error=False,
            ))

    @staticmethod
    def _logical_id(construct) -> str:
        return Stack.of(construct).get_logical_id(construct.node.default_child)

    @staticmethod
    def _grant_key(fn: ServiceFunction, key: kms.IKey, actions: list[str]) -> None:
        iam.Grant.add_to_principal(
            grantee=fn.function, actions=actions, resource_arns=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
        )

    def _log_access(self, config: CoexistConfig, key: kms.IKey) -> None:
        """Connects and disconnects, without the query string (which carries the token)."""
        log_group = encrypted_log_group(self, "AccessLogs", key=key, retention_days=config.log_retention_days)
        stage = self.stage.node.default_child
        stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=log_group.log_group_arn,
            format=(
                '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","routeKey":"$context.routeKey",'
                '"eventType":"$context.eventType","status":"$context.status","connectionId":"$context.connectionId",'
                '"requestTime":"$context.requestTime","authorizerError":"$context.authorizer.error"}'
            ),
        )
