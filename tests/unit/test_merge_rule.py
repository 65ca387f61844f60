"""Two chats of one person merged: whose conversation the surviving chat goes on with
(coexist.domain.chat.conversation_kept, docs/ARCHITECTURE.md rule 15). The expected table is
written out in full, so a change to the rule shows up as a change to this table."""

from __future__ import annotations

import pytest

from coexist.domain.chat import Chat, ChatMode, ConversationState, MergeSide, conversation_kept, holds_anything

B, Q, A, P, C, X = ChatMode.BOT, ChatMode.QUEUED, ChatMode.AGENT, ChatMode.APP, ChatMode.CONNECT, ChatMode.CLOSED
# A hold: who holds the chat, and whether a conversation (a workflow execution) runs on it.
HOLDS = [(X, False), (X, True), (B, False), (B, True), (Q, False), (Q, True),
         (P, False), (P, True), (A, False), (A, True), (C, False), (C, True)]

# Rows: the surviving chat's hold; columns: the merged chat's, both in the order of HOLDS.
# S: the surviving chat keeps its own conversation; M: it takes over the merged chat's.
EXPECTED = """
                 X  X* B  B* Q  Q* P  P* A  A* C  C*
closed           S  M  M  M  M  M  M  M  M  M  M  M
closed, live     S  S  M  M  M  M  M  M  M  M  M  M
bot              S  S  S  M  M  M  M  M  M  M  M  M
bot, live        S  S  S  S  M  M  M  M  M  M  M  M
queued           S  S  S  S  S  M  M  M  M  M  M  M
queued, live     S  S  S  S  S  S  M  M  M  M  M  M
app              S  S  S  S  S  S  S  M  M  M  M  M
app, live        S  S  S  S  S  S  S  S  M  M  M  M
agent            S  S  S  S  S  S  S  S  S  M  M  M
agent, live      S  S  S  S  S  S  S  S  S  S  M  M
connect          S  S  S  S  S  S  S  S  S  S  S  M
connect, live    S  S  S  S  S  S  S  S  S  S  S  S
"""


def table() -> list[list[MergeSide]]:
    rows = [line.split()[-len(HOLDS):] for line in EXPECTED.strip().splitlines()[1:]]
    return [[MergeSide.SURVIVOR if cell == "S" else MergeSide.MERGED for cell in row] for row in rows]


def chat(chat_id: str, mode: ChatMode, live: bool, **more) -> Chat:
    return Chat("106540352242922", None, chat_id, mode=mode,
                conversation_state=ConversationState.LIVE if live else ConversationState.ENDED, **more)


def test_the_table_covers_every_hold():
    assert len(table()) == len(HOLDS) and all(len(row) == len(HOLDS) for row in table())
    assert {mode for mode, _ in HOLDS} == set(ChatMode)


@pytest.mark.parametrize("survivor", range(len(HOLDS)), ids=lambda i: "survivor %s%s" % (HOLDS[i][0].value, "*" * HOLDS[i][1]))
@pytest.mark.parametrize("merged", range(len(HOLDS)), ids=lambda i: "merged %s%s" % (HOLDS[i][0].value, "*" * HOLDS[i][1]))
def test_the_more_human_hold_is_kept_and_a_tie_keeps_the_survivors(survivor, merged):
    kept = conversation_kept(chat("cs", *HOLDS[survivor]), chat("cm", *HOLDS[merged]))
    assert kept == table()[survivor][merged]


def test_an_agents_chat_merged_into_a_bot_chat_keeps_the_agent():
    survivor = chat("cs", B, True, waiting_for="customer")
    merged = chat("cm", A, True, assignee="ana", waiting_for="agent")
    assert conversation_kept(survivor, merged) == MergeSide.MERGED
    assert conversation_kept(merged, survivor) == MergeSide.SURVIVOR  # the other way round too


def test_deciding_again_after_the_merge_never_moves_the_conversation_back():
    # Once carried, the survivor holds what the merged chat held: the same hold on both sides is a tie.
    agent = chat("cs", A, True, assignee="ana")
    assert conversation_kept(agent, chat("cm", A, True, assignee="ana")) == MergeSide.SURVIVOR


def test_what_ending_a_hold_must_undo():
    assert not holds_anything(chat("c1", X, False))
    assert not holds_anything(chat("c1", B, False))
    assert holds_anything(chat("c1", B, True))  # a workflow to stop
    assert holds_anything(chat("c1", A, False, assignee="ana"))  # picked up outside a conversation: ana's slot
    assert holds_anything(chat("c1", Q, False, offered_to="bea"))  # an offer reserved bea's slot
