"""Retention as settings: each table's default from its spec, `<TABLE>_RETENTION_DAYS` overriding it,
bad values refused at start."""

from __future__ import annotations

import pytest

from coexist import resources
from coexist.settings import Settings


def test_each_expiring_table_has_a_default_and_an_override():
    defaults = Settings.from_environ({})
    assert defaults.retention_days(resources.MESSAGES) == 6 * 365
    assert defaults.retention_days(resources.PRIVACY) == 30
    configured = Settings.from_environ({"MESSAGES_RETENTION_DAYS": "3650", "COSTS_RETENTION_DAYS": "0"})
    assert configured.retention_days(resources.MESSAGES) == 3650
    assert configured.retention_days(resources.COSTS) == 0  # kept until erased
    assert configured.retention_days(resources.AUDIT) == 6 * 365
    assert configured.retention_days(resources.CHATS) == 0  # a table without a retention keeps its records


@pytest.mark.parametrize("value", ["-1", "ten", "36501", "1.5"])
def test_a_wrong_retention_is_refused_at_start(value):
    with pytest.raises(ValueError, match="MESSAGES_RETENTION_DAYS"):
        Settings.from_environ({"MESSAGES_RETENTION_DAYS": value})
