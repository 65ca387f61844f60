"""Who may do what in the inbox: the agent API's access rules.

Pure: a typed principal, an action and the facts about its resource in; a typed refusal out (or
None: allowed). The API gathers the facts (the caller's role and numbers, the chat's number and
assignee, whether an account is configured) and asks `check`; nothing else decides.

Roles, each one everything the one before may do and more:
- `agent`: reads and works the chats of the numbers assigned to it; acts on a chat assigned to
  someone else only to accept an offer made to it;
- `supervisor`: as an agent, and also sends into, releases, closes and transfers chats of its
  numbers that are assigned to other agents (on their behalf), and sets its agents' availability;
- `admin`: every number, and alone writes the agent directory, syncs message templates and imports
  consent in bulk.
Reading what messages cost (the cost ledger) and a number's dashboard is for supervisors (their numbers)
and admins.

Consent: whoever may read a chat may read its customer's consent and record a change to it (an
agent hears "please stop the offers" on the phone); each change names the agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum


class Role(IntEnum):
    AGENT = 1
    SUPERVISOR = 2
    ADMIN = 3


# The Cognito groups that grant each role (the `cognito:groups` claim of the ID token).
ROLE_GROUPS = {"agent": Role.AGENT, "supervisor": Role.SUPERVISOR, "admin": Role.ADMIN}


def role_of(groups) -> Role | None:
    """The highest role the groups grant; None when none of them is a Coexist group."""
    roles = [ROLE_GROUPS[g] for g in groups if g in ROLE_GROUPS]
    return max(roles) if roles else None


@dataclass(frozen=True)
class Principal:
    """Who is asking. `agent_id` is None only for the local shared token without X-Agent-Id."""

    agent_id: str | None
    role: Role | None
    numbers: frozenset[str] = frozenset()  # an admin works on every number, whatever this holds

    def works_on(self, phone_number_id: str | None) -> bool:
        if self.role is Role.ADMIN:
            return True
        return phone_number_id is not None and phone_number_id in self.numbers

    def is_at_least(self, role: Role) -> bool:
        return self.role is not None and self.role >= role


class Action(str, Enum):
    READ_CHAT = "read_chat"  # a chat and its messages
    SEND = "send"
    ACCEPT = "accept"
    RELEASE = "release"
    CLOSE = "close"
    TRANSFER = "transfer"
    LIST_CHATS = "list_chats"  # a number's chats
    READ_NUMBER = "read_number"
    LIST_ASSIGNED = "list_assigned"  # the chats assigned to one agent
    READ_DIRECTORY = "read_directory"
    WRITE_DIRECTORY = "write_directory"
    SET_AVAILABILITY = "set_availability"
    READ_TEMPLATES = "read_templates"
    SYNC_TEMPLATES = "sync_templates"
    CHANGE_CONSENT = "change_consent"  # record a customer's consent on one of its chats
    IMPORT_CONSENT = "import_consent"  # a bulk consent import, across numbers
    READ_COSTS = "read_costs"  # a number's cost ledger: what Meta charges
    READ_DASHBOARD = "read_dashboard"  # a number's supervisor figures (queue, response times, CSAT)
    READ_AUDIT = "read_audit"  # the audit trail (admins)
    # A customer's rights, on its chat (admins): an export of everything held, erasure, legal hold.
    EXPORT = "export"
    READ_EXPORT = "read_export"
    ERASE = "erase"
    SET_LEGAL_HOLD = "set_legal_hold"
    CLEAR_LEGAL_HOLD = "clear_legal_hold"
    READ_CAMPAIGN = "read_campaign"  # a campaign's progress, a portfolio's messaging limit
    RUN_CAMPAIGN = "run_campaign"  # start, pause, resume, cancel a campaign of a number
    SET_MESSAGING_LIMIT = "set_messaging_limit"


# Actions on a chat that only an admin may take, whoever holds it.
ADMIN_CHAT_ACTIONS = frozenset({Action.EXPORT, Action.READ_EXPORT, Action.ERASE, Action.SET_LEGAL_HOLD, Action.CLEAR_LEGAL_HOLD})

# Actions on a chat that, once someone holds it, belong to its assignee (or a supervisor).
ASSIGNEE_ACTIONS = frozenset({Action.SEND, Action.RELEASE, Action.CLOSE, Action.TRANSFER})


@dataclass(frozen=True)
class ChatFacts:
    chat_id: str | None  # None only for a request naming no known chat (an unknown export)
    phone_number_id: str | None  # None when the chat is not known
    assignee: str | None = None


@dataclass(frozen=True)
class Number:
    phone_number_id: str


@dataclass(frozen=True)
class Agent:
    """An agent of the directory, as the target of an action."""

    agent_id: str
    numbers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Account:
    """A WhatsApp Business Account; `via_number` when it was named through one of its numbers."""

    waba_id: str
    configured: bool
    via_number: str | None = None


Resource = ChatFacts | Number | Agent | Account | None


@dataclass(frozen=True)
class Refusal:
    message: str
    code: str = "forbidden"
    http_status: int = 403


def check(principal: Principal, action: Action, resource: Resource = None) -> Refusal | None:
    if principal.role is None:
        return Refusal("Your user is in none of Coexist's groups (agent, supervisor, admin); ask an administrator.")
    if action is Action.READ_DIRECTORY:
        return None
    if action is Action.WRITE_DIRECTORY:
        return None if principal.is_at_least(Role.ADMIN) else Refusal("Only an admin may change the agent directory.")
    if action is Action.READ_AUDIT:
        return None if principal.is_at_least(Role.ADMIN) else Refusal("Only an admin may read the audit trail.")
    if action is Action.SET_AVAILABILITY:
        return _availability(principal, _expect(resource, Agent, action))
    if action in (Action.READ_TEMPLATES, Action.SYNC_TEMPLATES):
        return _templates(principal, action, _expect(resource, Account, action))
    if action is Action.IMPORT_CONSENT:
        return None if principal.is_at_least(Role.ADMIN) else Refusal("Only an admin may import consent in bulk.")
    if action in (Action.READ_COSTS, Action.READ_DASHBOARD):
        return _supervisors(principal, action, _expect(resource, Number, action))
    if action in (Action.LIST_CHATS, Action.READ_NUMBER):
        number = _expect(resource, Number, action)
        return None if principal.works_on(number.phone_number_id) else _not_your_number(number.phone_number_id)
    if action in (Action.READ_CAMPAIGN, Action.RUN_CAMPAIGN, Action.SET_MESSAGING_LIMIT):
        return _campaigns(principal, action, _expect(resource, Number, action))
    if action is Action.LIST_ASSIGNED:
        agent = _expect(resource, Agent, action)
        if agent.agent_id == principal.agent_id or principal.is_at_least(Role.SUPERVISOR):
            return None
        return Refusal("An agent lists only the chats assigned to itself.")
    return _chat(principal, action, _expect(resource, ChatFacts, action))


def acting_agent(principal: Principal, action: Action, chat: ChatFacts) -> str | None:
    """Whose hands the workflow sees an (allowed) action on a chat come from: the assignee's when a
    supervisor releases, closes or transfers a chat assigned to someone else, else the caller's."""
    if action in (Action.RELEASE, Action.CLOSE, Action.TRANSFER) and chat.assignee and chat.assignee != principal.agent_id:
        return chat.assignee
    return principal.agent_id


def _chat(principal: Principal, action: Action, chat: ChatFacts) -> Refusal | None:
    if action in ADMIN_CHAT_ACTIONS and not principal.is_at_least(Role.ADMIN):
        return Refusal(f"Only an admin may {action.value.replace('_', ' ')} a chat (a customer's rights are handled by admins).")
    if not principal.works_on(chat.phone_number_id):
        return _not_your_number(chat.phone_number_id, chat.chat_id)
    if (
        action in ASSIGNEE_ACTIONS
        and chat.assignee is not None
        and chat.assignee != principal.agent_id
        and not principal.is_at_least(Role.SUPERVISOR)
    ):
        return Refusal(f"This chat is assigned to another agent; only they or a supervisor may {action.value} it.")
    return None


def _availability(principal: Principal, agent: Agent) -> Refusal | None:
    if agent.agent_id == principal.agent_id or principal.is_at_least(Role.ADMIN):
        return None
    if principal.is_at_least(Role.SUPERVISOR) and agent.numbers & principal.numbers:
        return None
    return Refusal("Only the agent itself, a supervisor of one of its numbers or an admin may set its availability.")


def _templates(principal: Principal, action: Action, account: Account) -> Refusal | None:
    if not account.configured:
        return Refusal(f"Account {account.waba_id} is not one of this deployment's accounts (waba_ids).")
    if account.via_number is not None and not principal.works_on(account.via_number):
        return _not_your_number(account.via_number)
    if action is Action.SYNC_TEMPLATES and not principal.is_at_least(Role.ADMIN):
        return Refusal("Only an admin may sync message templates.")
    return None


def _supervisors(principal: Principal, action: Action, number: Number) -> Refusal | None:
    """A number's figures (what its messages cost, its team's performance) are for its supervisors."""
    if not principal.is_at_least(Role.SUPERVISOR):
        what = "what messages cost" if action is Action.READ_COSTS else "a number's dashboard"
        return Refusal(f"Only a supervisor or an admin may read {what}.")
    return None if principal.works_on(number.phone_number_id) else _not_your_number(number.phone_number_id)


def _campaigns(principal: Principal, action: Action, number: Number) -> Refusal | None:
    """Anyone on a number sees its campaigns; a supervisor runs them; only an admin sets the limit."""
    if not principal.works_on(number.phone_number_id):
        return _not_your_number(number.phone_number_id)
    if action is Action.RUN_CAMPAIGN and not principal.is_at_least(Role.SUPERVISOR):
        return Refusal("Only a supervisor or an admin may start, pause, resume or cancel a campaign.")
    if action is Action.SET_MESSAGING_LIMIT and not principal.is_at_least(Role.ADMIN):
        return Refusal("Only an admin may set a messaging limit.")
    return None


def _not_your_number(phone_number_id: str | None, chat_id: str | None = None) -> Refusal:
    if chat_id is not None:
        return Refusal(f"Chat {chat_id} is on a number that is not assigned to you.")
    return Refusal(f"Number {phone_number_id} is not assigned to you.")


def _expect(resource: Resource, kind: type, action: Action):
    if not isinstance(resource, kind):
        raise TypeError(f"{action.value} applies to a {kind.__name__}, not {type(resource).__name__}")
    return resource
