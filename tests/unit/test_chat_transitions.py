"""Who holds a chat: every (mode, event) pair either moves the chat to a mode or is refused with a
typed reason (coexist.domain.chat). The expected table is written out here in full, so a change to
a rule shows up as a change to this table."""

from __future__ import annotations

import pytest

from coexist.domain.chat import (
    RULES, WAITS, ChatEvent, ChatMode, TransitionRefused, WaitingFor, allowed_from, may, transition,
)

B, Q, A, P, C, X = ChatMode.BOT, ChatMode.QUEUED, ChatMode.AGENT, ChatMode.APP, ChatMode.CONNECT, ChatMode.CLOSED
NO = None  # refused

# Rows: events. Columns: the chat's mode before, in the order bot, queued, agent, app, connect, closed.
EXPECTED: dict[ChatEvent, tuple] = {
    ChatEvent.BEGIN:             (B,  NO, NO, NO, NO, B),
    ChatEvent.PHONE_APP_REPLIED: (P,  P,  P,  P,  P,  P),
    ChatEvent.AGENT_REPLIED:     (A,  NO, A,  A,  NO, NO),
    ChatEvent.BOT_RESUMED:       (B,  NO, NO, B,  NO, NO),
    ChatEvent.QUEUED:            (Q,  Q,  Q,  NO, Q,  NO),
    ChatEvent.ACCEPTED:          (NO, A,  A,  A,  NO, NO),
    ChatEvent.PICKED_UP:         (NO, A,  NO, NO, NO, NO),
    ChatEvent.NOBODY_ACCEPTED:   (NO, Q,  NO, NO, NO, NO),
    ChatEvent.HANDED_TO_CONNECT: (NO, C,  NO, NO, C,  NO),
    ChatEvent.CONNECT_FAILED:    (NO, Q,  NO, NO, Q,  NO),
    ChatEvent.CLOSED_BY_AGENT:   (X,  X,  X,  X,  X,  NO),
    ChatEvent.ENDED:             (X,  X,  X,  X,  X,  X),
}
MODES = (B, Q, A, P, C, X)


def test_the_table_names_every_event_and_every_mode():
    assert set(EXPECTED) == set(ChatEvent) == set(RULES)
    assert set(MODES) == set(ChatMode)


@pytest.mark.parametrize("event", list(ChatEvent))
@pytest.mark.parametrize("mode", MODES)
def test_each_mode_and_event_gives_the_next_mode_or_a_typed_refusal(mode, event):
    expected = EXPECTED[event][MODES.index(mode)]
    if expected is None:
        with pytest.raises(TransitionRefused) as refused:
            transition(mode, event)
        assert (refused.value.mode, refused.value.event) == (mode, event)
        assert event.value in str(refused.value)
        assert not may(mode, event)
    else:
        assert transition(mode, event) == expected
        assert may(mode, event) and mode in allowed_from(event)


def test_an_echo_takes_the_chat_from_anyone_and_only_an_agent_or_the_workflow_hands_it_on():
    assert all(transition(mode, ChatEvent.PHONE_APP_REPLIED) == P for mode in ChatMode)
    # The bot never takes a chat back from an agent or a Connect contact.
    assert not may(A, ChatEvent.BOT_RESUMED) and not may(C, ChatEvent.BOT_RESUMED) and not may(A, ChatEvent.BEGIN)


def test_every_wait_belongs_to_one_mode():
    assert set(WAITS) == set(WaitingFor)
    assert WAITS[WaitingFor.CUSTOMER] == B and WAITS[WaitingFor.ACCEPT] == Q and WAITS[WaitingFor.AGENT] == A
    assert WAITS[WaitingFor.CONNECT] == C and WAITS[WaitingFor.SURVEY] == X
