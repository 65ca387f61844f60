"""The deployed console: its bucket (private, KMS, OAC only), CloudFront (security headers, WAF from
us-east-1), the Cognito app client (code flow + PKCE, no secret, the distribution as its only
callback), the REST API's CORS, the WebSocket live channel and its least-privilege fan-out."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack, Validations
from aws_cdk.assertions import Match, Template

from coexist import resources
from local.console_files import CONTENT_SECURITY_POLICY
from stacks.constructs.console_content import deployed_config
from stacks.constructs.console_hosting import console_connect_sources, deployed_content_security_policy
from tests.infrastructure.conftest import CONSOLE_CERTIFICATE, CONSOLE_DOMAIN, CONSOLE_WEB_ACL, statements_of_role

pytestmark = pytest.mark.infra


def only(template, type_: str) -> tuple[str, dict]:
    found = template.find_resources(type_)
    assert len(found) == 1, (type_, list(found))
    return next(iter(found.items()))


def logical_id(construct) -> str:
    return Stack.of(construct).resolve(construct.node.default_child.logical_id)


# --- hosting ------------------------------------------------------------------------------------

def test_the_bucket_is_private_kms_encrypted_versioned_logged_and_tls_only(synthesised):
    hosting = synthesised.stacks.console.hosting
    files = synthesised.console.find_resources("AWS::S3::Bucket")[logical_id(hosting.bucket)]["Properties"]
    assert files["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": [logical_id(hosting.key), "Arn"]}}
    assert files["VersioningConfiguration"] == {"Status": "Enabled"}
    assert files["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert files["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logical_id(hosting.logs)}


def test_only_the_distribution_may_read_the_bucket_and_only_over_tls(synthesised):
    hosting = synthesised.stacks.console.hosting
    policy = next(p["Properties"]["PolicyDocument"]["Statement"] for p in synthesised.console.find_resources("AWS::S3::BucketPolicy").values()
                  if p["Properties"]["Bucket"] == {"Ref": logical_id(hosting.bucket)})
    allows = [s for s in policy if s["Effect"] == "Allow"]
    assert allows == [{
        "Action": "s3:GetObject", "Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [logical_id(hosting.bucket), "Arn"]}, "/*"]]},
        "Condition": {"StringEquals": {"AWS:SourceArn": {"Fn::Join": ["", [
            "arn:", {"Ref": "AWS::Partition"}, ":cloudfront::", {"Ref": "AWS::AccountId"}, ":distribution/",
            {"Ref": logical_id(hosting.distribution)}]]}}},
    }]
    (deny,) = [s for s in policy if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and deny["Action"] == "s3:*"
    # The distribution reaches the bucket through Origin Access Control (signed requests), not an OAI.
    (origin,) = synthesised.console.find_resources("AWS::CloudFront::Distribution")[logical_id(hosting.distribution)][
        "Properties"]["DistributionConfig"]["Origins"]
    assert "OriginAccessControlId" in origin and origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    _, oac = only(synthesised.console, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    # SSE-KMS with OAC: CloudFront may decrypt with the bucket's key, for this account's distributions only.
    key = synthesised.console.find_resources("AWS::KMS::Key")[logical_id(hosting.key)]["Properties"]
    cloudfront = [s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert [s["Action"] for s in cloudfront] == ["kms:Decrypt"]
    assert cloudfront[0]["Condition"]["ArnLike"]["AWS:SourceArn"]["Fn::Join"][1][-1] == ":distribution/*"
    assert key["EnableKeyRotation"] is True


def test_every_answer_carries_the_security_headers(synthesised):
    _, policy = only(synthesised.console, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = Stack.of(synthesised.stacks.console).resolve(
        deployed_content_security_policy(console_connect_sources(synthesised.stacks.config)))
    assert headers["ContentSecurityPolicy"] == {"ContentSecurityPolicy": csp, "Override": True}
    assert headers["StrictTransportSecurity"] == {"AccessControlMaxAgeSec": 730 * 86400, "IncludeSubdomains": True, "Override": True}
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"] == {"ReferrerPolicy": "no-referrer", "Override": True}
    config = json.loads(json.dumps(synthesised.console.find_resources("AWS::CloudFront::Distribution")))
    (distribution,) = config.values()
    behaviours = [distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"],
                  *distribution["Properties"]["DistributionConfig"]["CacheBehaviors"]]
    assert all(b["ResponseHeadersPolicyId"] == {"Ref": _} and b["ViewerProtocolPolicy"] == "redirect-to-https"
               for b in behaviours for _ in [only(synthesised.console, "AWS::CloudFront::ResponseHeadersPolicy")[0]])


def test_the_deployed_policy_is_local_modes_plus_the_origins_the_console_calls():
    deployed = deployed_content_security_policy(["https://api.example", "wss://live.example"])
    local = CONTENT_SECURITY_POLICY.split("; ")
    assert [d for d in deployed.split("; ") if not d.startswith("connect-src")] == [d for d in local if not d.startswith("connect-src")]
    assert "connect-src 'self' https://api.example wss://live.example" in deployed
    assert "frame-ancestors 'none'" in deployed and "script-src 'self'" in deployed


def test_the_web_acl_is_cloudfront_scoped_in_us_east_1_and_on_the_distribution(synthesised):
    edge = synthesised.stacks.console_edge
    assert edge.region == "us-east-1"
    acl_id, acl = only(synthesised.console_edge, "AWS::WAFv2::WebACL")
    assert acl["Properties"]["Scope"] == "CLOUDFRONT"
    assert {r["Name"] for r in acl["Properties"]["Rules"]} >= {"AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesCommonRuleSet"}
    synthesised.console_edge.has_resource_properties("AWS::SSM::Parameter", {
        "Name": synthesised.stacks.config.console_web_acl_parameter, "Value": {"Fn::GetAtt": [acl_id, "Arn"]}})
    synthesised.console_edge.has_resource_properties("AWS::WAFv2::LoggingConfiguration", {"ResourceArn": {"Fn::GetAtt": [acl_id, "Arn"]}})
    # Read back in the console's region at deploy time, from that parameter in us-east-1.
    lookup_id, lookup = only(synthesised.console, "Custom::AWS")
    create = json.loads(json.dumps(lookup["Properties"]["Create"]))
    assert "us-east-1" in json.dumps(create) and synthesised.stacks.config.console_web_acl_parameter in json.dumps(create)
    (distribution,) = synthesised.console.find_resources("AWS::CloudFront::Distribution").values()
    assert distribution["Properties"]["DistributionConfig"]["WebACLId"] == {"Fn::GetAtt": [lookup_id, "Parameter.Value"]}


def test_an_existing_web_acl_replaces_the_edge_stack(customised):
    assert customised.console_edge is None
    console = Template.from_stack(customised.console)
    assert console.find_resources("Custom::AWS") == {}
    (distribution,) = console.find_resources("AWS::CloudFront::Distribution").values()
    assert distribution["Properties"]["DistributionConfig"]["WebACLId"] == CONSOLE_WEB_ACL


@pytest.mark.parametrize("arn", ["arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/x/y", "not-an-arn"])
def test_a_web_acl_that_cannot_front_cloudfront_fails_the_synth(arn):
    from aws_cdk import App

    from stacks.config import CoexistConfig

    with pytest.raises(ValueError, match="console_web_acl_arn"):
        CoexistConfig.from_context(App(context={"coexist": {"console_web_acl_arn": arn}}).node)


def acknowledged_rules(construct) -> set[str]:
    cfn = construct.node.default_child
    return {rule.split("::", 1)[-1] for entry in cfn.node.metadata
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY for rule in entry.data}


def test_without_a_domain_the_distribution_uses_its_own_name_and_the_tls_finding_is_acknowledged(synthesised):
    hosting = synthesised.stacks.console.hosting
    config = synthesised.console.find_resources("AWS::CloudFront::Distribution")[logical_id(hosting.distribution)][
        "Properties"]["DistributionConfig"]
    assert "Aliases" not in config and "ViewerCertificate" not in config  # *.cloudfront.net's certificate
    assert "AwsSolutions-CFR4" in acknowledged_rules(hosting.distribution)


def test_a_custom_domain_puts_its_certificate_on_the_distribution_with_tls_1_2_at_least(customised):
    hosting = customised.console.hosting
    console = Template.from_stack(customised.console)
    (config,) = [d["Properties"]["DistributionConfig"] for d in console.find_resources("AWS::CloudFront::Distribution").values()]
    assert config["Aliases"] == [CONSOLE_DOMAIN]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": CONSOLE_CERTIFICATE, "MinimumProtocolVersion": "TLSv1.2_2021", "SslSupportMethod": "sni-only"}
    # With a policy of its own, nothing is waived (nag ran clean on this stage at synth).
    assert "AwsSolutions-CFR4" not in acknowledged_rules(hosting.distribution)
    # Sign-in returns to, and the API admits, the console's own domain.
    assert hosting.url == f"https://{CONSOLE_DOMAIN}"
    client = Template.from_stack(customised.ingress).find_resources("AWS::Cognito::UserPoolClient")[
        logical_id(customised.ingress.rest.console_client)]["Properties"]
    assert client["CallbackURLs"] == client["LogoutURLs"] == [f"https://{CONSOLE_DOMAIN}/"]


@pytest.mark.parametrize("settings,complaint", [
    ({"console_domain_name": CONSOLE_DOMAIN}, "go together"),
    ({"console_certificate_arn": CONSOLE_CERTIFICATE}, "go together"),
    ({"console_domain_name": "Console.Example.com", "console_certificate_arn": CONSOLE_CERTIFICATE}, "host name"),
    ({"console_domain_name": "https://console.example.com", "console_certificate_arn": CONSOLE_CERTIFICATE}, "host name"),
    ({"console_domain_name": CONSOLE_DOMAIN, "console_certificate_arn": CONSOLE_CERTIFICATE.replace("us-east-1", "eu-west-1")}, "us-east-1"),
    ({"console_domain_name": CONSOLE_DOMAIN, "console_certificate_arn": "not-an-arn"}, "us-east-1"),
])
def test_a_domain_without_a_usable_certificate_fails_the_synth(settings, complaint):
    from aws_cdk import App

    from stacks.config import CoexistConfig

    with pytest.raises(ValueError, match=complaint):
        CoexistConfig.from_context(App(context={"coexist": settings}).node)


# --- sign-in ------------------------------------------------------------------------------------

def distribution_url(synthesised) -> dict:
    """How the ingress stack names the console's URL: the console stack's export of its domain."""
    return Stack.of(synthesised.stacks.ingress).resolve(synthesised.stacks.ingress.rest.console_url)


def test_the_console_client_uses_the_code_flow_with_no_secret_and_returns_to_the_distribution(synthesised):
    client = synthesised.ingress.find_resources("AWS::Cognito::UserPoolClient")[
        logical_id(synthesised.stacks.ingress.rest.console_client)]["Properties"]
    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    url = distribution_url(synthesised)
    assert url["Fn::Join"][1][0] == "https://"
    export = url["Fn::Join"][1][1]["Fn::ImportValue"]
    (exported,) = [o["Value"] for o in synthesised.console.to_json()["Outputs"].values() if o.get("Export", {}).get("Name") == export]
    assert exported == {"Fn::GetAtt": [logical_id(synthesised.stacks.console.hosting.distribution), "DomainName"]}
    expected = Stack.of(synthesised.stacks.ingress).resolve(f"{synthesised.stacks.ingress.rest.console_url}/")
    assert client["CallbackURLs"] == client["LogoutURLs"] == [expected]


def test_the_hosted_sign_in_domain_and_role_groups_exist(synthesised):
    _, domain = only(synthesised.ingress, "AWS::Cognito::UserPoolDomain")
    assert domain["Properties"]["Domain"] == {"Fn::Join": ["", ["coexist-dev-", {"Ref": "AWS::AccountId"}]]}
    groups = {g["Properties"]["GroupName"] for g in synthesised.ingress.find_resources("AWS::Cognito::UserPoolGroup").values()}
    assert groups == {"agent", "supervisor", "admin"}


def test_the_rest_api_allows_exactly_the_console_origin(synthesised):
    origin = Stack.of(synthesised.stacks.ingress).resolve(f"'{synthesised.stacks.ingress.rest.console_url}'")
    preflights = [m for m in synthesised.ingress.find_resources("AWS::ApiGateway::Method").values() if m["Properties"]["HttpMethod"] == "OPTIONS"]
    assert len(preflights) == 2  # /api and /api/{proxy+}
    for method in preflights:
        (response,) = method["Properties"]["Integration"]["IntegrationResponses"]
        assert response["ResponseParameters"]["method.response.header.Access-Control-Allow-Origin"] == origin
        assert method["Properties"]["AuthorizationType"] == "NONE" and method["Properties"]["Integration"]["Type"] == "MOCK"
    responses = synthesised.ingress.find_resources("AWS::ApiGateway::GatewayResponse")
    assert {r["Properties"]["ResponseType"] for r in responses.values()} >= {"DEFAULT_4XX", "DEFAULT_5XX"}
    assert all(r["Properties"]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"] == origin
               for r in responses.values())
    api = synthesised.ingress.find_resources("AWS::Lambda::Function")[logical_id(synthesised.stacks.ingress.agent_api.function)]
    assert api["Properties"]["Environment"]["Variables"][resources.CONSOLE_ORIGIN_ENV] == distribution_url(synthesised)


# --- live channel -------------------------------------------------------------------------------

def test_connect_needs_the_token_authorizer_and_there_is_no_other_route_but_disconnect(synthesised):
    channel = synthesised.stacks.live.channel
    routes = {r["Properties"]["RouteKey"]: r["Properties"] for r in synthesised.live.find_resources("AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$disconnect"}
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    authorizer_id, authorizer = only(synthesised.live, "AWS::ApiGatewayV2::Authorizer")
    assert routes["$connect"]["AuthorizerId"] == {"Ref": authorizer_id}
    assert authorizer["Properties"]["AuthorizerType"] == "REQUEST"
    assert authorizer["Properties"]["IdentitySource"] == ["route.request.querystring.token"]
    assert logical_id(channel.authorizer_function.function) in json.dumps(authorizer["Properties"]["AuthorizerUri"])
    env = synthesised.live.find_resources("AWS::Lambda::Function")[logical_id(channel.authorizer_function.function)]["Properties"]["Environment"]["Variables"]
    assert "cognito-idp." in json.dumps(env["COGNITO_ISSUER"]) and "Fn::ImportValue" in json.dumps(env["CONSOLE_CLIENT_ID"])
    _, stage = only(synthesised.live, "AWS::ApiGatewayV2::Stage")
    log_format = stage["Properties"]["AccessLogSettings"]["Format"]
    assert "querystring" not in log_format.lower() and "token" not in log_format.lower()  # the token never reaches a log


def test_the_authorizer_reads_only_the_agent_directory(synthesised):
    channel = synthesised.stacks.live.channel
    statements = statements_of_role(synthesised.live, logical_id(channel.authorizer_function.role))
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert [s["Action"] for s in dynamodb] == [["dynamodb:GetItem"]]
    agents_table = f"table/{synthesised.stacks.config.table_name(resources.AGENTS.logical_id)}"
    assert agents_table in json.dumps(dynamodb[0]["Resource"])
    env = synthesised.live.find_resources("AWS::Lambda::Function")[logical_id(channel.authorizer_function.function)]["Properties"]["Environment"]["Variables"]
    assert env[resources.AGENTS.env_var] == synthesised.stacks.config.table_name(resources.AGENTS.logical_id)


def test_the_fan_out_may_do_exactly_its_job(synthesised):
    channel = synthesised.stacks.live.channel
    statements = statements_of_role(synthesised.live, logical_id(channel.fanout_function.role))
    actions = {a for s in statements for a in s["Action"]}
    assert actions == {
        "dynamodb:Scan", "dynamodb:DeleteItem", "dynamodb:GetItem", "kms:Decrypt", "kms:DescribeKey", "execute-api:ManageConnections",
        "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
    }
    (manage,) = [s for s in statements if "execute-api:ManageConnections" in s["Action"]]
    resource = json.dumps(manage["Resource"])
    assert logical_id(channel.api) in resource and "/dev/POST/@connections/*" in resource
    connections_table = f"table/{synthesised.stacks.config.table_name(resources.CONNECTIONS.logical_id)}"
    for statement in statements:
        if set(statement["Action"]) & {"dynamodb:Scan", "dynamodb:DeleteItem"}:
            assert connections_table in json.dumps(statement["Resource"])
    config = synthesised.stacks.config
    (reads,) = [s for s in statements if s["Action"] == ["dynamodb:GetItem"]]  # a changed item's number, by its key
    assert sorted(json.dumps(r) for r in reads["Resource"]) == sorted(
        json.dumps(r) for r in reads["Resource"] if any(f"table/{config.table_name(n)}" in json.dumps(r) for n in ("Chats", "Messages")))
    assert len(reads["Resource"]) == 2
    env = synthesised.live.find_resources("AWS::Lambda::Function")[logical_id(channel.fanout_function.function)]["Properties"]["Environment"]["Variables"]
    assert env[resources.CHATS.env_var] == config.table_name("Chats") and env[resources.MESSAGES.env_var] == config.table_name("Messages")
    mappings = synthesised.live.find_resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 2
    for mapping in mappings.values():
        assert mapping["Properties"]["StartingPosition"] == "LATEST"
        assert "Fn::ImportValue" in json.dumps(mapping["Properties"]["EventSourceArn"])  # the data stack's streams


def test_the_connections_function_writes_only_connections(synthesised):
    channel = synthesised.stacks.live.channel
    statements = statements_of_role(synthesised.live, logical_id(channel.connections_function.role))
    dynamodb = [s for s in statements if any(a.startswith("dynamodb:") for a in s["Action"])]
    assert [sorted(s["Action"]) for s in dynamodb] == [["dynamodb:DeleteItem", "dynamodb:PutItem"]]
    assert "coexist-dev-connections" in json.dumps(dynamodb[0]["Resource"])


def test_chats_and_messages_stream_their_keys_only_and_connections_expire(synthesised):
    tables = {t["Properties"]["TableName"]: t["Properties"] for t in synthesised.data.find_resources("AWS::DynamoDB::Table").values()}
    config = synthesised.stacks.config
    for spec in resources.TABLES:
        stream = tables[config.table_name(spec.logical_id)].get("StreamSpecification")
        expected = {resources.CHATS: "KEYS_ONLY", resources.MESSAGES: "KEYS_ONLY", resources.AUDIT: "NEW_IMAGE"}.get(spec)
        assert stream == ({"StreamViewType": expected} if expected else None), spec.logical_id
    assert tables[config.table_name("Connections")]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_files_are_published_with_a_config_naming_every_deployed_url(synthesised):
    _, deployment = only(synthesised.live, "Custom::CDKBucketDeployment")
    properties = deployment["Properties"]
    assert properties["DestinationBucketName"] == {
        "Fn::Join": ["", ["coexist-dev-console-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}
    markers = json.dumps(properties["SourceMarkers"])
    ingress = Stack.of(synthesised.stacks.ingress)
    client = ingress.resolve(synthesised.stacks.ingress.rest.console_client.user_pool_client_id)["Ref"]
    for piece in ('"https://', ".execute-api.", ".auth.", "wss://", "PublicApiRestApi", client, logical_id(synthesised.stacks.live.channel.api)):
        assert piece in markers, piece
    assert properties["DistributionPaths"] == ["/*"]
    config = deployed_config(region="r", api_url="a", live_url="w", sign_in_url="s", client_id="c", numbers=["1"])
    assert config == {"auth": "cognito", "region": "r", "api": "a", "cognito": {"domain": "s", "client_id": "c"},
                      "live": {"kind": "websocket", "url": "w"}, "numbers": ["1"]}
