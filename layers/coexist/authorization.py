"""The agent API's caller, and the facts the access rules (coexist.domain.access) decide on.

Who the caller is:
- deployed (`COEXIST_API_AUTH=cognito`): API Gateway's Cognito authorizer has checked the ID token;
  the agent is its `cognito:username`, the role its highest Coexist group in `cognito:groups`.
  `X-Agent-Id` is ignored: the token says who you are.
- local mode (`token`): the shared token (`COEXIST_API_TOKEN`) is an admin, acting as the agent
  named by `X-Agent-Id` when there is one; `<COEXIST_AGENT_TOKEN_PREFIX><agent_id>` (by default
  `local-agent-ana`) is that agent of the directory, role `agent`.

An agent's or a supervisor's numbers are the `numbers` of its item in the agent directory (written
by an admin with `POST /api/agents`); an admin works on every number.

`Gate` is the one place every read of or action on a chat passes through: it gathers the chat's
number and assignee and asks the rules, and hands every decision to the audit trail (`audit`)
before answering, so whatever a route authorizes is recorded by construction. A decision the trail
cannot record stops the request (AuditUnavailable, HTTP 503): fail closed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from coexist.domain import access
from coexist.domain.chat import Chat
from coexist.domain.access import Action, Principal, Refusal, Role
from coexist.reads import BadRequest

MAX_AGENT_ID = 128  # Cognito user names are at most 128 characters


class Unauthorized(Exception):
    """No valid credentials (HTTP 401)."""


class Forbidden(Exception):
    """Valid credentials, but the access rules refuse (HTTP 403)."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message)
        self.refusal = refusal


class ChatMissing(Exception):
    """The chat does not exist (HTTP 404)."""


def groups_of(claim) -> list[str]:
    """`cognito:groups` as API Gateway's REST authorizer passes it: a list, "admin", "admin,agent"
    or "[admin agent]" (arrays are flattened to a string)."""
    if claim is None:
        return []
    if isinstance(claim, (list, tuple)):
        return [str(g).strip() for g in claim if str(g).strip()]
    text = str(claim).strip().strip("[]")
    return [g for g in text.replace(",", " ").split() if g]


def directory_numbers(agent: dict | None) -> frozenset[str]:
    return frozenset(str(n) for n in (agent or {}).get("numbers") or [])


@dataclass(frozen=True)
class Credentials:
    """What the request carries about its caller."""

    claims: dict | None  # the Cognito authorizer's claims, when API Gateway ran one
    authorization: str | None  # the Authorization header
    agent_header: str | None  # X-Agent-Id


def principal_of(
    credentials: Credentials, api_auth: str, api_token: str, agent_token_prefix: str, directory: Callable[[str], dict | None]
) -> Principal:
    """The caller, or Unauthorized / Forbidden. `directory(agent_id)` reads the agent's item."""
    if api_auth == "cognito":
        claims = credentials.claims or {}
        agent_id = claims.get("cognito:username") or claims.get("sub")
        if not agent_id:
            raise Unauthorized("a valid bearer token is required")
        role = access.role_of(groups_of(claims.get("cognito:groups")))
        return _with_numbers(Principal(str(agent_id), role), directory)
    scheme, _, token = (credentials.authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("a valid bearer token is required")
    named = credentials.agent_header
    if named is not None and not 0 < len(named) <= MAX_AGENT_ID:
        raise BadRequest(f"X-Agent-Id must be 1 to {MAX_AGENT_ID} characters")
    if hmac.compare_digest(token.encode(), api_token.encode()):
        return Principal(named or None, Role.ADMIN)
    prefix = token[: len(agent_token_prefix)]
    agent_id = token[len(agent_token_prefix):]
    if hmac.compare_digest(prefix.encode(), agent_token_prefix.encode()) and 0 < len(agent_id) <= MAX_AGENT_ID:
        agent = directory(agent_id)
        if agent is not None:
            if named is not None and named != agent_id:
                raise Forbidden(Refusal(f"This token is agent {agent_id}'s; X-Agent-Id cannot name another agent."))
            return Principal(agent_id, Role.AGENT, directory_numbers(agent))
    raise Unauthorized("a valid bearer token is required")


def _with_numbers(principal: Principal, directory: Callable[[str], dict | None]) -> Principal:
    if principal.role is None or principal.role is Role.ADMIN or principal.agent_id is None:
        return principal
    return Principal(principal.agent_id, principal.role, directory_numbers(directory(principal.agent_id)))


# Told of each decision: (action, chat id or None, the refusal or None when allowed, ids of the resource).
AuditHook = Callable[[Action, "str | None", "Refusal | None", dict], None]


def _audited_resource(resource: access.Resource) -> tuple[str | None, dict]:
    """The chat a decision was about, and the ids of any other resource (never a name or a body)."""
    if isinstance(resource, access.ChatFacts):
        return resource.chat_id, {"phone_number_id": resource.phone_number_id}
    if isinstance(resource, access.Number):
        return None, {"phone_number_id": resource.phone_number_id}
    if isinstance(resource, access.Agent):
        return None, {"agent_id": resource.agent_id}
    if isinstance(resource, access.Account):
        return None, {"waba_id": resource.waba_id, "phone_number_id": resource.via_number}
    return None, {}


class Gate:
    """Gathers the facts for one caller's requests and asks the access rules; refuses by raising."""

    def __init__(
        self,
        principal: Principal,
        chat_lookup: Callable[[str], Chat | None],
        directory: Callable[[str], dict | None],
        accounts: frozenset[str],
        audit: AuditHook | None = None,
    ):
        self.principal = principal
        self._chat_lookup = chat_lookup
        self._directory = directory
        self._accounts = accounts
        self._audit = audit

    def allow(self, action: Action, resource: access.Resource = None, detail: dict | None = None) -> None:
        """Allowed, or Forbidden; either way the audit trail is told first (`detail`: more ids to record)."""
        refusal = access.check(self.principal, action, resource)
        if self._audit is not None:
            chat_id, ids = _audited_resource(resource)
            self._audit(action, chat_id, refusal, {**ids, **(detail or {})})
        if refusal is not None:
            raise Forbidden(refusal)

    def chat(self, chat_id: str, action: Action, detail: dict | None = None) -> access.ChatFacts:
        """Every read of or action on a chat comes through here. A chat that does not exist is
        ChatMissing to everyone but an admin, whom the use case answers (messages may exist first)."""
        found = self._chat_lookup(chat_id)
        if found is None and self.principal.role is not Role.ADMIN:
            if self.principal.role is None:
                self.allow(action, access.ChatFacts(chat_id, None), detail)  # in no group: a 403 whatever the chat
            raise ChatMissing(chat_id)
        chat = access.ChatFacts(chat_id, found.phone_number_id if found else None, found.assignee if found else None)
        self.allow(action, chat, detail)
        return chat

    def sees(self, chat_view: dict) -> bool:
        """Whether a chat of a listing may be shown (listings by assignee cross numbers)."""
        chat = access.ChatFacts(chat_view["chat_id"], chat_view.get("phone_number_id"), chat_view.get("assignee"))
        return access.check(self.principal, Action.READ_CHAT, chat) is None

    def acting_agent(self, action: Action, chat: access.ChatFacts) -> str | None:
        return access.acting_agent(self.principal, action, chat)

    def number(self, phone_number_id: str, action: Action) -> None:
        self.allow(action, access.Number(phone_number_id))

    def agent(self, agent_id: str, action: Action) -> dict | None:
        """The target agent's directory item (None if unknown), once the rules allow the action."""
        item = self._directory(agent_id) if action is Action.SET_AVAILABILITY else None
        self.allow(action, access.Agent(agent_id, directory_numbers(item)))
        return item

    def account(self, waba_id: str, action: Action, via_number: str | None = None) -> None:
        self.allow(action, access.Account(waba_id, waba_id in self._accounts, via_number))


def gate_of(resolver) -> "Gate":
    """The gate of the request `resolver` (the API or one of its routers) is answering: the handler
    puts one per request into the resolver's context, shared with every router."""
    return resolver.context["gate"]
