"""The access rules as a table: principal × action × resource → allowed or a typed 403 refusal."""

from __future__ import annotations

import pytest

from coexist.domain.access import (
    Account,
    Action,
    Agent,
    ChatFacts,
    Number,
    Principal,
    Refusal,
    Role,
    acting_agent,
    check,
    role_of,
)

MINE, OTHER = "111", "222"
ANA = Principal("ana", Role.AGENT, frozenset({MINE}))
SUE = Principal("sue", Role.SUPERVISOR, frozenset({MINE}))
ADA = Principal("ada", Role.ADMIN)  # no numbers listed: an admin works on all
NOBODY = Principal("zed", None, frozenset({MINE}))  # signed in, in no Coexist group

FREE = ChatFacts("c1", MINE)  # unassigned
ANAS = ChatFacts("c2", MINE, assignee="ana")
BENS = ChatFacts("c3", MINE, assignee="ben")
ELSEWHERE = ChatFacts("c4", OTHER)
UNKNOWN = ChatFacts("c5", None)  # a chat that does not exist yet
CONFIGURED = Account("waba-1", configured=True)
FOREIGN = Account("waba-2", configured=False)

ALLOW = None
DENY = "forbidden"

TABLE = [
    # who, action, resource, expected
    # reading chats: the numbers decide
    (ANA, Action.READ_CHAT, FREE, ALLOW),
    (ANA, Action.READ_CHAT, BENS, ALLOW),
    (ANA, Action.READ_CHAT, ELSEWHERE, DENY),
    (ANA, Action.READ_CHAT, UNKNOWN, DENY),
    (SUE, Action.READ_CHAT, ELSEWHERE, DENY),
    (ADA, Action.READ_CHAT, ELSEWHERE, ALLOW),
    (ADA, Action.READ_CHAT, UNKNOWN, ALLOW),
    # acting on chats: an assigned chat belongs to its assignee or a supervisor
    *[(ANA, action, FREE, ALLOW) for action in (Action.SEND, Action.ACCEPT, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    *[(ANA, action, ANAS, ALLOW) for action in (Action.SEND, Action.ACCEPT, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    *[(ANA, action, BENS, DENY) for action in (Action.SEND, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    (ANA, Action.ACCEPT, BENS, ALLOW),  # whether it is offered to her is the workflow's call (409)
    *[(ANA, action, ELSEWHERE, DENY) for action in (Action.SEND, Action.ACCEPT, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    *[(SUE, action, BENS, ALLOW) for action in (Action.SEND, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    *[(SUE, action, ELSEWHERE, DENY) for action in (Action.SEND, Action.ACCEPT, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    *[(ADA, action, BENS, ALLOW) for action in (Action.SEND, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    *[(ADA, action, ELSEWHERE, ALLOW) for action in (Action.SEND, Action.ACCEPT, Action.RELEASE, Action.CLOSE, Action.TRANSFER)],
    # numbers and their chat lists
    (ANA, Action.LIST_CHATS, Number(MINE), ALLOW),
    (ANA, Action.LIST_CHATS, Number(OTHER), DENY),
    (SUE, Action.READ_NUMBER, Number(OTHER), DENY),
    (ANA, Action.READ_NUMBER, Number(MINE), ALLOW),
    (ADA, Action.READ_NUMBER, Number(OTHER), ALLOW),
    # an agent's assigned chats
    (ANA, Action.LIST_ASSIGNED, Agent("ana"), ALLOW),
    (ANA, Action.LIST_ASSIGNED, Agent("ben"), DENY),
    (SUE, Action.LIST_ASSIGNED, Agent("ben"), ALLOW),
    (ADA, Action.LIST_ASSIGNED, Agent("ben"), ALLOW),
    # the directory
    (ANA, Action.READ_DIRECTORY, None, ALLOW),
    (ANA, Action.WRITE_DIRECTORY, Agent("ana"), DENY),
    (SUE, Action.WRITE_DIRECTORY, Agent("ben"), DENY),
    (ADA, Action.WRITE_DIRECTORY, Agent("ben"), ALLOW),
    (ANA, Action.SET_AVAILABILITY, Agent("ana", frozenset({MINE})), ALLOW),
    (ANA, Action.SET_AVAILABILITY, Agent("ben", frozenset({MINE})), DENY),
    (SUE, Action.SET_AVAILABILITY, Agent("ben", frozenset({MINE, OTHER})), ALLOW),
    (SUE, Action.SET_AVAILABILITY, Agent("ben", frozenset({OTHER})), DENY),
    (SUE, Action.SET_AVAILABILITY, Agent("ghost"), DENY),
    (ADA, Action.SET_AVAILABILITY, Agent("ben", frozenset({OTHER})), ALLOW),
    # templates: configured accounts only; syncing is an admin's
    (ANA, Action.READ_TEMPLATES, CONFIGURED, ALLOW),
    (ANA, Action.READ_TEMPLATES, FOREIGN, DENY),
    (ANA, Action.READ_TEMPLATES, Account("waba-1", True, via_number=OTHER), DENY),
    (ANA, Action.READ_TEMPLATES, Account("waba-1", True, via_number=MINE), ALLOW),
    (ANA, Action.SYNC_TEMPLATES, CONFIGURED, DENY),
    (SUE, Action.SYNC_TEMPLATES, CONFIGURED, DENY),
    (ADA, Action.SYNC_TEMPLATES, CONFIGURED, ALLOW),
    (ADA, Action.SYNC_TEMPLATES, FOREIGN, DENY),
    (ADA, Action.READ_TEMPLATES, FOREIGN, DENY),
    # no Coexist group: nothing at all
    *[(NOBODY, action, resource, DENY) for action, resource in (
        (Action.READ_CHAT, FREE), (Action.READ_DIRECTORY, None), (Action.LIST_CHATS, Number(MINE)),
        (Action.SET_AVAILABILITY, Agent("zed")), (Action.READ_TEMPLATES, CONFIGURED),
    )],
]


@pytest.mark.parametrize(("principal", "action", "resource", "expected"), TABLE)
def test_access_table(principal, action, resource, expected):
    refusal = check(principal, action, resource)
    if expected is ALLOW:
        assert refusal is None
    else:
        assert isinstance(refusal, Refusal)
        assert (refusal.code, refusal.http_status) == ("forbidden", 403)
        assert refusal.message.endswith(".") and len(refusal.message) > 20


def test_refusals_say_why():
    assert "assigned to another agent" in check(ANA, Action.CLOSE, BENS).message
    assert "c4" in check(ANA, Action.READ_CHAT, ELSEWHERE).message
    assert "waba-2" in check(ADA, Action.SYNC_TEMPLATES, FOREIGN).message
    assert "admin" in check(SUE, Action.WRITE_DIRECTORY, Agent("x")).message


def test_a_supervisor_acts_on_behalf_of_the_assignee():
    assert acting_agent(SUE, Action.CLOSE, BENS) == "ben"
    assert acting_agent(SUE, Action.RELEASE, BENS) == "ben"
    assert acting_agent(SUE, Action.TRANSFER, BENS) == "ben"
    assert acting_agent(SUE, Action.CLOSE, FREE) == "sue"
    assert acting_agent(SUE, Action.ACCEPT, BENS) == "sue"  # accepting is always for oneself
    assert acting_agent(ANA, Action.CLOSE, ANAS) == "ana"


def test_roles_from_groups_highest_wins_and_others_are_ignored():
    assert role_of([]) is None
    assert role_of(["Everyone", "billing"]) is None
    assert role_of(["agent"]) is Role.AGENT
    assert role_of(["agent", "admin", "other"]) is Role.ADMIN
    assert role_of(["supervisor", "agent"]) is Role.SUPERVISOR


def test_an_action_given_the_wrong_kind_of_resource_is_a_programming_error():
    with pytest.raises(TypeError):
        check(ANA, Action.READ_CHAT, Number(MINE))
    with pytest.raises(TypeError):
        check(ANA, Action.SYNC_TEMPLATES, None)
