"""Who may read what messages cost: supervisors of the number and admins; never an agent."""

from __future__ import annotations

import pytest

from coexist.domain.access import Action, Number, Principal, Role, check

MINE, OTHER = "111", "222"


@pytest.mark.parametrize(
    "principal, number, allowed",
    [
        (Principal("ana", Role.AGENT, frozenset({MINE})), MINE, False),
        (Principal("sue", Role.SUPERVISOR, frozenset({MINE})), MINE, True),
        (Principal("sue", Role.SUPERVISOR, frozenset({MINE})), OTHER, False),
        (Principal("ada", Role.ADMIN), OTHER, True),
        (Principal("zed", None, frozenset({MINE})), MINE, False),
    ],
)
def test_reading_costs(principal, number, allowed):
    refusal = check(principal, Action.READ_COSTS, Number(number))
    assert (refusal is None) is allowed
    if principal.role is Role.AGENT:
        assert "supervisor or an admin" in refusal.message
