"""The public REST API: Meta's webhook (signed, no authorizer) and the agent API (Cognito JWT)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from coexist import resources
from constructs import Construct

from stacks.config import CoexistConfig
from stacks.constructs import nag
from stacks.constructs.log_groups import encrypted_log_group
from stacks.constructs.web_acl import ApiFirewall

# Meta's subscription handshake: GET /webhook?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...
HANDSHAKE_PARAMETERS = ("hub.mode", "hub.verify_token", "hub.challenge")


class CoexistApi(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: CoexistConfig,
        key: kms.IKey,
        webhook: lambda_.IFunction,
        agent_api: lambda_.IFunction,
        console_url: str,
    ) -> None:
        super().__init__(scope, id)
        self.console_url = console_url
        self.agents = self._agent_pool(config)
        access_logs = encrypted_log_group(self, "AccessLogs", key=key, retention_days=config.log_retention_days)
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{config.prefix}-api",
            description="Coexist: Meta webhook and agent API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Meta signs the exact bytes it sends; treating JSON as binary hands the function the raw
            # body (base64) instead of a re-encoded string, so X-Hub-Signature-256 can be checked.
            binary_media_types=["application/json"],
            cloud_watch_role=True,  # API Gateway needs the account-level role to write execution logs
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=config.stage,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                # resourcePath is the route template (/api/{proxy+}), never the wa_id in the real path.
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # full request/response logging would write message bodies (PHI)
                tracing_enabled=True,
                metrics_enabled=True,
                throttling_rate_limit=config.api_throttle_rate,
                throttling_burst_limit=config.api_throttle_burst,
                # Meta's webhook and the agent API are throttled apart: a busy console cannot use
                # up what Meta needs, nor a burst of status callbacks what the agents need.
                method_options={
                    **{
                        f"/webhook/{verb}": apigw.MethodDeploymentOptions(
                            throttling_rate_limit=config.webhook_throttle_rate,
                            throttling_burst_limit=config.webhook_throttle_burst,
                        )
                        for verb in ("GET", "POST")
                    },
                    "/api/{proxy+}/*": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=config.api_throttle_rate,
                        throttling_burst_limit=config.api_throttle_burst,
                    ),
                },
            ),
        )
        self._webhook_routes(webhook)
        self._agent_routes(agent_api)
        self.firewall = ApiFirewall(
            self,
            "Firewall",
            stage_arn=self.rest_api.deployment_stage.stage_arn,
            stage=config.stage,
            rate_limit_per_ip=config.api_rate_limit_per_ip,
            key=key,
            name=f"{config.prefix}-api",
            log_retention_days=config.log_retention_days,
        )
        self._acknowledge_stage()

    def _agent_pool(self, config: CoexistConfig) -> cognito.UserPool:
        """Agents and supervisors; created by an administrator only (docs/DEPLOY.md)."""
        pool = cognito.UserPool(
            self,
            "Agents",
            user_pool_name=f"{config.prefix}-agents",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            mfa=cognito.Mfa.REQUIRED,  # agents read patients' conversations
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=14, require_lowercase=True, require_uppercase=True, require_digits=True,
                require_symbols=True, temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,  # threat protection: compromised credentials, risky sign-ins
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.console_client = pool.add_client(
            "Console",
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,  # a browser app cannot keep a secret: PKCE instead
            # The console signs in through the hosted sign-in with the authorization-code flow and
            # PKCE, coming back to its own URL only (stacks/constructs/console_sign_in.py).
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True, implicit_code_grant=False, client_credentials=False),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                callback_urls=[f"{self.console_url}/"],
                logout_urls=[f"{self.console_url}/"],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            enable_token_revocation=True,
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
            refresh_token_validity=Duration.hours(12),  # one shift
        )
        return pool

    def _webhook_routes(self, webhook: lambda_.IFunction) -> None:
        resource = self.rest_api.root.add_resource("webhook")
        integration = apigw.LambdaIntegration(webhook)
        # Rejects a handshake without its query parameters before the function runs. (A POST body is
        # checked by signature, not by schema: Meta adds fields without notice.)
        handshake_validator = self.rest_api.add_request_validator(
            "HandshakeValidator", validate_request_parameters=True, validate_request_body=True
        )
        get = resource.add_method(
            "GET",
            integration,
            request_parameters={f"method.request.querystring.{p}": True for p in HANDSHAKE_PARAMETERS},
            request_validator=handshake_validator,
        )
        post = resource.add_method("POST", integration)
        reason = (
            "Meta calls this route and cannot present AWS or Cognito credentials; the webhook function "
            "authenticates every POST by its X-Hub-Signature-256 HMAC and the GET handshake by the verify token."
        )
        for method in (get, post):
            nag.acknowledge(method, "AwsSolutions-APIG4", reason)
            nag.acknowledge(method, "AwsSolutions-COG4", reason)

    def _agent_routes(self, agent_api: lambda_.IFunction) -> None:
        authorizer = apigw.CognitoUserPoolsAuthorizer(self, "AgentAuthorizer", cognito_user_pools=[self.agents])
        # The console calls from its CloudFront origin: preflights (OPTIONS, which carry no token)
        # are answered by API Gateway for that origin alone; the function adds the same header to
        # its answers, and the gateway's own refusals (401 from the authorizer, throttling) carry it
        # too, so the console sees the status rather than a network error.
        cors = apigw.CorsOptions(
            allow_origins=[self.console_url], allow_headers=list(resources.CONSOLE_REQUEST_HEADERS),
            allow_methods=["GET", "POST", "PUT", "DELETE"], max_age=Duration.hours(1),
        )
        api = self.rest_api.root.add_resource("api", default_cors_preflight_options=cors)
        proxy = api.add_proxy(
            default_integration=apigw.LambdaIntegration(agent_api),
            any_method=True,
            default_method_options=apigw.MethodOptions(
                authorizer=authorizer, authorization_type=apigw.AuthorizationType.COGNITO
            ),
        )
        for resource in (api, proxy):
            preflight = resource.node.find_child("OPTIONS")
            reason = "A CORS preflight carries no credentials by the browser's rules; API Gateway answers it itself (no function) for the console's origin only."
            nag.acknowledge(preflight, "AwsSolutions-APIG4", reason)
            nag.acknowledge(preflight, "AwsSolutions-COG4", reason)
        for kind in (apigw.ResponseType.DEFAULT_4_XX, apigw.ResponseType.DEFAULT_5_XX):
            self.rest_api.add_gateway_response(
                f"Console{kind.response_type}", type=kind,
                response_headers={"Access-Control-Allow-Origin": f"'{self.console_url}'", "Vary": "'Origin'"},
            )

    def _acknowledge_stage(self) -> None:
        nag.acknowledge(
            self.rest_api.node.find_child("CloudWatchRole"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "The AWS-maintained policy for API Gateway's account-level logging role; it only writes logs.",
        )
        stage = self.rest_api.deployment_stage
        nag.acknowledge(
            stage, "HIPAA.Security-APIGWCacheEnabledAndEncrypted",
            "No response cache: webhook POSTs must reach the function every time and agent API responses "
            "are per-user PHI that should not be held in a shared cache.",
        )
        nag.acknowledge(
            stage, "HIPAA.Security-APIGWSSLEnabled",
            "Client certificates authenticate API Gateway to HTTP backends; both integrations are Lambda "
            "proxies invoked over AWS's signed, TLS control plane.",
        )
