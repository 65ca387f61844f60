"""The 14-day rule's warnings (coexist.domain.app_activity)."""

from __future__ import annotations

import pytest

from coexist.domain.app_activity import DAY_S, quiet_spell

LAST = 1_800_000_000


@pytest.mark.parametrize("days, warned, due", [
    (0, None, None), (9, None, None), (10, None, 10), (11, None, 10), (11, 10, None), (12, 10, 12),
    (13, 12, 13), (13, None, 13), (13, 13, None), (20, 13, None), (20, None, 13),
])
def test_each_warning_is_due_once_per_quiet_spell(days, warned, due):
    quiet = quiet_spell(LAST, LAST + days * DAY_S + 60, warned)
    assert (quiet.days, quiet.warn_at) == (days, due)
    assert quiet.disconnect_expected_at == LAST + 14 * DAY_S


def test_a_clock_behind_the_last_sign_counts_no_days():
    assert quiet_spell(LAST, LAST - 500).days == 0
