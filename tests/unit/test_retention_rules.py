"""The retention rule (coexist.domain.retention): when a closed chat's messages may go, and when not."""

from __future__ import annotations

import pytest

from coexist.domain.chat import Chat, ChatMode
from coexist.domain.retention import DAY_S, Verdict, decide, expires_at, quiet_since

CLOSED_AT = 1_800_000_000


def chat(mode: ChatMode = ChatMode.CLOSED, closed_at: int | None = CLOSED_AT, last_message_at: int | None = CLOSED_AT - 60) -> Chat:
    return Chat(phone_number_id="106540352242922", wa_id=None, chat_id="c" + "a" * 24, mode=mode,
                closed_at=closed_at, last_message_at=last_message_at)


def test_a_record_expires_its_retention_after_it_was_written_and_zero_keeps_it():
    assert expires_at(1_000, 2) == 1_000 + 2 * DAY_S
    assert expires_at(1_000, 0) is None


@pytest.mark.parametrize("mode", [m for m in ChatMode if m != ChatMode.CLOSED])
def test_an_open_chat_never_expires_however_old(mode):
    decision = decide(chat(mode=mode), held=False, now=CLOSED_AT + 100 * 365 * DAY_S, retention_days=1)
    assert decision.verdict == Verdict.OPEN and decision.expires_at is None


def test_a_closed_chat_expires_once_quiet_for_the_retention():
    due = CLOSED_AT + 30 * DAY_S
    assert decide(chat(), held=False, now=due - 1, retention_days=30).verdict == Verdict.NOT_YET
    decision = decide(chat(), held=False, now=due, retention_days=30)
    assert decision.verdict == Verdict.EXPIRE and decision.expires_at == due


def test_a_legal_hold_suspends_the_expiry():
    assert decide(chat(), held=True, now=CLOSED_AT + 400 * DAY_S, retention_days=30).verdict == Verdict.HELD


def test_a_message_after_the_close_starts_the_quiet_period_from_it():
    late = chat(last_message_at=CLOSED_AT + 10 * DAY_S)
    assert quiet_since(late) == CLOSED_AT + 10 * DAY_S
    decision = decide(late, held=False, now=CLOSED_AT + 31 * DAY_S, retention_days=30)
    assert decision.verdict == Verdict.NOT_YET and decision.counts_from == CLOSED_AT + 10 * DAY_S
    assert decision.expires_at == CLOSED_AT + 40 * DAY_S


def test_a_closed_chat_without_a_close_time_is_a_new_conversation_starting():
    assert quiet_since(chat(closed_at=None)) is None
    assert decide(chat(closed_at=None), held=False, now=CLOSED_AT * 2, retention_days=1).verdict == Verdict.OPEN


def test_a_retention_of_zero_keeps_a_closed_chat_forever():
    assert decide(chat(), held=False, now=CLOSED_AT * 2, retention_days=0).verdict == Verdict.KEPT
