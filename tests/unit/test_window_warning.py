"""When the agent hears that the customer-service window is about to close: once per window."""

from __future__ import annotations

from coexist.domain.window import next_warning_at, warned_for_window, warning_due

HOUR, DAY = 3600, 24 * 3600
WROTE = 1_000_000  # the customer's latest message; the window closes at WROTE + DAY


def test_the_warning_is_due_in_the_last_hour_of_the_window_only():
    assert next_warning_at(WROTE, None, HOUR) == WROTE + DAY - HOUR
    assert not warning_due(WROTE, None, WROTE + DAY - HOUR - 1, HOUR)
    assert warning_due(WROTE, None, WROTE + DAY - HOUR, HOUR)
    assert warning_due(WROTE, None, WROTE + DAY - 1, HOUR)
    assert not warning_due(WROTE, None, WROTE + DAY, HOUR)  # closed: too late to be useful
    assert not warning_due(None, None, WROTE, HOUR)  # the customer never wrote: no window


def test_once_per_window_and_again_for_the_next():
    warned = WROTE + DAY - HOUR + 10
    assert warned_for_window(WROTE + DAY, warned, HOUR)
    assert not warning_due(WROTE, warned, WROTE + DAY - 60, HOUR)
    assert next_warning_at(WROTE, warned, HOUR) is None
    later = WROTE + DAY - 30 * 60  # the customer wrote again: a new window, a new warning
    assert not warned_for_window(later + DAY, warned, HOUR)
    assert next_warning_at(later, warned, HOUR) == later + DAY - HOUR
    assert warning_due(later, warned, later + DAY - HOUR, HOUR)
