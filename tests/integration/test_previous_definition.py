"""Conversations an upgrade finds running: Step Functions runs each execution on the definition it
started with, while its tasks are served by today's conversation function. They go on to their end.
Every earlier definition began with the bot, so ingest started its execution at the conversation's
first message (here, as then: `started_by_ingest`).

Four earlier definitions: tests/fixtures/conversation-previous.asl.json (before the bot's turn
became one state per message, with its own begin, customer wait, handoff, survey and score states),
tests/fixtures/conversation-one-state-per-message.asl.json (before the bot's whole phase became
one state timed by heartbeats: each customer message's wake was the next `BotTurn` state) and
tests/fixtures/conversation-bot-phase-loops.asl.json (before a resolving bot closed the conversation
in its turn: it failed its token for `Close`, whose state waited for the survey's answer) and
tests/fixtures/conversation-bot-phase-one-task.asl.json (before the bot phase left the workflow: its
`BotTurn` task held the whole phase, timed by heartbeats)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coexist.conversation.workflow import BotLoop
from local import workflows
from local.workflows import EXECUTE_STATE_MACHINES
from tests.conftest import emulated_account
from tests.integration.helpers import deliver
from tests.integration.test_conversation import (
    FAST, add_agent, agent_call, bot_messages, chat, executions, finished, our_chat, says, wait_for,
)

PREVIOUS = Path(__file__).resolve().parents[1] / "fixtures" / "conversation-previous.asl.json"
ONE_STATE_PER_MESSAGE = Path(__file__).resolve().parents[1] / "fixtures" / "conversation-one-state-per-message.asl.json"
BOT_PHASE_LOOPS = Path(__file__).resolve().parents[1] / "fixtures" / "conversation-bot-phase-loops.asl.json"
BOT_PHASE_ONE_TASK = Path(__file__).resolve().parents[1] / "fixtures" / "conversation-bot-phase-one-task.asl.json"


def started_by_ingest(self: BotLoop, chat_id: str, conversation_id: str) -> None:
    """How ingest began a conversation before the bot phase left the workflow: its execution."""
    self.workflow.start(conversation_id, chat_id)


def _running(monkeypatch, definition: Path):
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps(FAST))
    monkeypatch.setattr(workflows, "render", lambda arn: definition.read_text().replace("${ConversationFunction}", arn))
    monkeypatch.setattr(BotLoop, "begin", started_by_ingest)
    return emulated_account(monkeypatch, config=EXECUTE_STATE_MACHINES, workflow=True)


@pytest.fixture
def account(monkeypatch):
    with _running(monkeypatch, PREVIOUS) as emulated:
        yield emulated


@pytest.fixture
def one_state_per_message(monkeypatch):
    with _running(monkeypatch, ONE_STATE_PER_MESSAGE) as emulated:
        yield emulated


@pytest.fixture
def bot_phase_loops(monkeypatch):
    with _running(monkeypatch, BOT_PHASE_LOOPS) as emulated:
        yield emulated


@pytest.fixture
def bot_phase_one_task(monkeypatch):
    with _running(monkeypatch, BOT_PHASE_ONE_TASK) as emulated:
        yield emulated


def entered(account) -> list[str]:
    [execution] = executions(account)
    history = account.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def test_a_bot_conversation_of_the_previous_definition_answers_resolves_and_scores(account):
    deliver(account, says("What are your opening hours?"))
    # The turn ends with the decision that definition chooses by; its own state then waits.
    wait_for(lambda: entered(account) == ["Begin", "BotTurn", "AfterBotTurn", "WaitForCustomer"], what="the customer wait")
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    answered = len(bot_messages())
    assert answered and chat()["bot_intent"] == "opening_hours"
    deliver(account, says("And on Saturday?"))
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the second answer")
    deliver(account, says("thanks, bye"))
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    assert len([m for m in bot_messages() if m["type"] == "interactive" and m["text"] == "How did we do today?"]) == 1
    deliver(account, says("", reply=("csat_3", "😊 Great")))
    finished(account)
    view = chat()
    assert (view["mode"], view["satisfaction_score"], view["conversation_state"]) == ("closed", 3, "ended")


def test_an_escalation_of_the_previous_definition_reaches_the_agent_and_ends_with_the_survey(account):
    add_agent("ana")
    deliver(account, says("I want to talk to a person"))
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert agent_call("POST", f"/api/chats/{our_chat()}/accept", "ana")[0] == 200
    wait_for(lambda: chat()["waiting_for"] == "agent", what="the agent wait")
    assert agent_call("POST", f"/api/chats/{our_chat()}/messages", "ana", {"type": "text", "text": "Ana here."})[0] == 202
    assert agent_call("POST", f"/api/chats/{our_chat()}/close", "ana")[0] == 200
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    deliver(account, says("", reply=("csat_2", "😐 Okay")))
    finished(account)
    assert (chat()["mode"], chat()["satisfaction_score"]) == ("closed", 2)
    assert [a["active_chats"] for a in agent_call("GET", "/api/agents", "ana")[1]["items"]] == [0]


def test_a_bot_conversation_of_one_state_per_message_wakes_its_next_turn_by_the_tokens_success(one_state_per_message):
    account = one_state_per_message
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    answered = len(bot_messages())
    # Its token takes no heartbeats: ingest ends the task, and the definition's next state is the turn.
    deliver(account, says("And on Saturday?"))
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the second answer")
    assert entered(account) == ["BotTurn", "BotTurn"]
    deliver(account, says("thanks, bye"))
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    deliver(account, says("", reply=("csat_3", "😊 Great")))
    finished(account)
    assert entered(account) == ["BotTurn", "BotTurn", "BotTurn", "Close"]
    assert (chat()["mode"], chat()["satisfaction_score"]) == ("closed", 3)


def test_a_bot_conversation_whose_close_waits_for_the_survey_ends_with_the_answer(bot_phase_loops):
    account = bot_phase_loops
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    answered = len(bot_messages())
    deliver(account, says("And on Saturday?"))  # the next turn on the same token, as today
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the second answer")
    deliver(account, says("thanks, bye"))
    # That definition's turn does not close: it leaves for its `Close`, which parks its token for the answer.
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    assert entered(account) == ["BotTurn", "Close"]
    [running] = executions(account)
    assert account.sfn.describe_execution(executionArn=running["executionArn"])["status"] == "RUNNING"
    deliver(account, says("", reply=("csat_2", "😐 Okay")))
    finished(account)
    assert (chat()["mode"], chat()["satisfaction_score"], chat()["waiting_for"]) == ("closed", 2, None)
    assert len([m for m in bot_messages() if m["type"] == "interactive" and m["text"] == "How did we do today?"]) == 1


def test_a_bot_phase_held_by_one_task_answers_resolves_and_ends_its_execution(bot_phase_one_task):
    account = bot_phase_one_task
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    answered = len(bot_messages())
    deliver(account, says("And on Saturday?"))  # its task token's heartbeat, and the next turn on it
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the second answer")
    deliver(account, says("thanks, bye"))
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    finished(account)
    assert entered(account) == ["BotTurn"]  # the turn that resolved ended the task and the execution
    deliver(account, says("", reply=("csat_3", "😊 Great")))
    assert (chat()["mode"], chat()["satisfaction_score"]) == ("closed", 3)


def test_an_escalation_from_a_bot_phase_held_by_one_task_reaches_the_agent(bot_phase_one_task):
    account = bot_phase_one_task
    add_agent("ana")
    deliver(account, says("I want to talk to a person"))
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert entered(account)[:2] == ["BotTurn", "Escalate"]
    assert agent_call("POST", f"/api/chats/{our_chat()}/accept", "ana")[0] == 200
    wait_for(lambda: chat()["waiting_for"] == "agent", what="the agent wait")
    assert agent_call("POST", f"/api/chats/{our_chat()}/close", "ana")[0] == 200
    finished(account)
    assert chat()["mode"] == "closed"
