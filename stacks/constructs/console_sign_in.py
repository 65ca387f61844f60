"""Signing in to the deployed console: the user pool's hosted sign-in domain and the role groups.

The console's app client (stacks/constructs/rest_api.py) uses the OAuth 2.0 authorization-code flow
with PKCE and no client secret; its only callback and sign-out URL is the console's CloudFront URL.
The groups are the roles the API reads from `cognito:groups` (coexist/domain/access.py).
"""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from coexist.domain.access import ROLE_GROUPS
from stacks.config import CoexistConfig

GROUP_DESCRIPTIONS = {
    "agent": "Works the chats of its numbers",
    "supervisor": "As an agent, and acts on its numbers' chats that other agents hold",
    "admin": "Every number; writes the agent directory and syncs templates",
}


class ConsoleSignIn(Construct):
    def __init__(self, scope: Construct, id: str, *, config: CoexistConfig, pool: cognito.UserPool) -> None:
        super().__init__(scope, id)
        self.domain = pool.add_domain(
            "Domain",
            cognito_domain=cognito.CognitoDomainOptions(domain_prefix=config.console_sign_in_domain_prefix(Aws.ACCOUNT_ID)),
        )
        self.groups = {
            group: cognito.CfnUserPoolGroup(
                self, f"{group.capitalize()}Group", user_pool_id=pool.user_pool_id, group_name=group,
                description=GROUP_DESCRIPTIONS[group],
            )
            for group in ROLE_GROUPS
        }

    @property
    def base_url(self) -> str:
        return self.domain.base_url()
