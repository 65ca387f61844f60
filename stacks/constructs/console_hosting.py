"""Where the agent console is served from: a private S3 bucket behind CloudFront.

The bucket is reachable only through the distribution (Origin Access Control: CloudFront signs its
requests, the bucket policy admits that one distribution) and is encrypted with a key of its own,
whose policy lets CloudFront decrypt for this account's distributions only. Every answer carries
the console's security headers, the same as local mode's (local/console_files.py), except that
the console may also reach the API, its live channel and the Cognito sign-in, which have origins
of their own.
"""

from __future__ import annotations

from aws_cdk import Annotations, Aws, Duration, RemovalPolicy
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from local.console_files import CONTENT_SECURITY_POLICY
from stacks.config import CoexistConfig
from stacks.constructs import nag

HSTS_MAX_AGE = Duration.days(730)


def deployed_content_security_policy(connect_sources: list[str]) -> str:
    """Local mode's policy, with `connect-src` extended by the origins the deployed console calls."""
    directives = []
    for directive in CONTENT_SECURITY_POLICY.split("; "):
        if directive.startswith("connect-src "):
            directive = " ".join([directive, *connect_sources])
        directives.append(directive)
    return "; ".join(directives)


def console_connect_sources(config: CoexistConfig, region: str = Aws.REGION, account: str = Aws.ACCOUNT_ID) -> list[str]:
    """The REST API and the WebSocket API get generated ids, unknown when this stack deploys (they
    deploy after it): any execute-api endpoint of the region, over TLS. The sign-in domain is fixed."""
    return [
        f"https://*.execute-api.{region}.amazonaws.com",
        f"wss://*.execute-api.{region}.amazonaws.com",
        f"https://{config.console_sign_in_domain_prefix(account)}.auth.{region}.amazoncognito.com",
    ]


class ConsoleHosting(Construct):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, web_acl_arn: str) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self, "Key", description=f"Coexist {config.stage}: the agent console's files",
            enable_key_rotation=True, removal_policy=RemovalPolicy.DESTROY,  # holds only the published app
        )
        # S3 server access logging and CloudFront standard logging deliver only to SSE-S3 buckets;
        # CloudFront's (legacy) logging also needs ACLs, hence object ownership "bucket owner preferred".
        self.logs = s3.Bucket(
            self, "Logs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.log_retention_days),
                                              noncurrent_version_expiration=Duration.days(30))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self, "Files",
            bucket_name=config.console_bucket_name(Aws.ACCOUNT_ID, Aws.REGION),  # the live stack publishes into it by name
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs,
            server_access_logs_prefix="files/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
            removal_policy=RemovalPolicy.DESTROY,
            auto_delete_objects=False,
        )
        self.headers = cloudfront.ResponseHeadersPolicy(
            self, "SecurityHeaders",
            comment="Coexist console: CSP, HSTS, no framing, no sniffing, no referrer",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=deployed_content_security_policy(console_connect_sources(config)),
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=HSTS_MAX_AGE, include_subdomains=True, override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True
                ),
            ),
        )
        origin = origins.S3BucketOrigin.with_origin_access_control(self.bucket)
        custom_domain = config.console_domain_name
        self.distribution = cloudfront.Distribution(
            self, "Distribution",
            comment=f"Coexist {config.stage} agent console",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origin,
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
            ),
            additional_behaviors={
                # Written at each deploy: never served stale from an edge cache.
                "/config.json": cloudfront.BehaviorOptions(
                    origin=origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    response_headers_policy=self.headers,
                ),
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL,
            enable_logging=True,
            log_bucket=self.logs,
            log_file_prefix="cloudfront/",
            web_acl_id=web_acl_arn,
            # A custom certificate is what lets the viewer policy be chosen: TLS 1.2 or newer only.
            domain_names=[custom_domain] if custom_domain else None,
            certificate=acm.Certificate.from_certificate_arn(self, "Certificate", config.console_certificate_arn)
            if custom_domain else None,
            minimum_protocol_version=cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if custom_domain else None,
        )
        self.url = f"https://{custom_domain or self.distribution.distribution_domain_name}"
        Annotations.of(self).acknowledge_warning(
            "@aws-cdk/aws-cloudfront-origins:wildcardKeyPolicyForOac",
            "The key's CloudFront statement matches this account's distributions (distribution/*): naming the one "
            "distribution would be a circular reference (key, bucket, distribution). The bucket policy names it.",
        )
        self._acknowledge(custom_domain=bool(custom_domain))

    def _acknowledge(self, custom_domain: bool) -> None:
        for rule, reason in (
            ("AwsSolutions-S1", "This is the log bucket itself; logging it into itself would loop."),
            ("HIPAA.Security-S3BucketLoggingEnabled", "This is the log bucket itself; logging it into itself would loop."),
            ("HIPAA.Security-S3DefaultEncryptionKMS",
             "S3 server access logs and CloudFront standard logs are delivered only to SSE-S3 buckets; they hold "
             "request lines of a static app, no message content."),
        ):
            nag.acknowledge(self.logs, rule, reason)
        for bucket in (self.bucket, self.logs):
            nag.acknowledge(
                bucket, "HIPAA.Security-S3BucketReplicationEnabled",
                "The console's files are rebuilt from the repository by every deploy; its logs are kept in "
                "one region like the rest of the deployment.",
            )
        nag.acknowledge(
            self.distribution, "AwsSolutions-CFR1",
            "Agents may work from anywhere the business operates; sign-in (Cognito, MFA) and the WAF guard the "
            "console, which is static files. Add a geo restriction here if the business wants one.",
        )
        if not custom_domain:
            nag.acknowledge(
                self.distribution, "AwsSolutions-CFR4",
                "The distribution's default *.cloudfront.net certificate, for which CloudFront fixes the viewer "
                "security policy itself (a minimum protocol can only be set with a custom certificate); browsers "
                "negotiate TLS 1.2 or 1.3 with it. Set console_domain_name and console_certificate_arn for "
                "TLSv1.2_2021 (docs/DEPLOY.md).",
            )
