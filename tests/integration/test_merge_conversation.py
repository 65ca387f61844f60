"""Two chats of one person merged while conversations run on them, through the real handlers and the
real workflow definition executed by moto: the more human conversation goes on in the surviving chat
(docs/ARCHITECTURE.md rule 15) with its mode, assignee and parked task token; the other one is
stopped (its execution, or its bot phase's idle timer) and frees its agent; a replayed webhook
changes nothing. Payloads are Meta's BSUID examples
(tests/fixtures/meta/bsuid/SOURCES.md) with the times of now, so the window is open."""

from __future__ import annotations

import time

from coexist import wiring
from coexist.domain.chat import ChatMode, WaitingFor
from tests.integration.helpers import chat_of, deliver, messages_of
from tests.integration.test_conversation import FAST, account, add_agent, agent_call, executions, idle_timers, says, wait_for  # noqa: F401
from tests.integration.test_identity import BSUID, NUMBER, PHONE, bsuid_payload

assert FAST  # the fixture's timings (a 5 s offer, an hour of customer idleness)


def by_bsuid(text: str, wamid: str) -> dict:
    payload = bsuid_payload("messages_username_no_phone.json")
    payload["entry"][0]["changes"][0]["value"]["messages"][0].update({"id": wamid, "timestamp": str(int(time.time())), "text": {"body": text}})
    return payload


def by_phone(text: str, wamid: str) -> dict:
    return says(text, wamid=wamid)  # the customer known by phone number only (PHONE)


def with_both(text: str, wamid: str) -> dict:
    payload = bsuid_payload("messages_both_identifiers.json")
    payload["entry"][0]["changes"][0]["value"]["messages"][0].update({"id": wamid, "timestamp": str(int(time.time())), "text": {"body": text}})
    return payload


def held(chat_id: str):
    return wiring.inbox().chats.get(chat_id)


def execution_of(account, conversation_id: str) -> dict:
    [found] = [e for e in executions(account) if e["name"] == conversation_id]
    return account.sfn.describe_execution(executionArn=found["executionArn"])


def stopped(account, conversation_id: str) -> bool:
    """Was the execution told to stop? AWS ends a stopped execution's parked wait at once and reports
    it ABORTED; moto marks the program stopped and ends the wait only at its timeout (hours here),
    so the program's state is read."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    arn = execution_of(account, conversation_id)["executionArn"]
    backend = stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][account.session.region_name]
    [execution] = [e for m in backend.state_machines for e in m.executions if e.exec_arn == arn]
    return isinstance(execution.exec_worker.env.program_state(), ProgramStopped)


def active_chats(agent: str) -> int:
    [found] = [a for a in agent_call("GET", "/api/agents", agent)[1]["items"] if a["agent_id"] == agent]
    return found["active_chats"]


def inbox_of(agent: str) -> list[str]:
    code, listing = agent_call("GET", f"/api/chats?assignee={agent}", agent)
    assert code == 200, listing
    return [c["chat_id"] for c in listing["items"]]


def bot_ids(chat_id: str) -> set[str]:
    return {m["id"] for m in messages_of(chat_id) if m["source"] == "bot"}


def bot_waiting(chat_id: str) -> bool:
    chat = held(chat_id)
    return chat is not None and chat.waiting_for == WaitingFor.CUSTOMER


def escalated_to(account, agent: str, wamid: str) -> str:
    """The customer known by phone asks for a person and `agent` accepts: that chat's id."""
    deliver(account, by_phone("I want to talk to a person", wamid))
    chat_id = chat_of(NUMBER, PHONE)
    wait_for(lambda: held(chat_id).offered_to == agent, what=f"the offer to {agent}")
    assert agent_call("POST", f"/api/chats/{chat_id}/accept", agent)[0] == 200
    wait_for(lambda: held(chat_id).waiting_for == WaitingFor.AGENT, what=f"{agent}'s wait")
    return chat_id


def test_a_chat_held_by_an_agent_merged_into_a_bot_chat_keeps_the_agent_and_replay_changes_nothing(account):
    deliver(account, by_bsuid("What are your opening hours?", "wamid.M1-BSUID"))
    survivor = chat_of(NUMBER, user_id=BSUID)
    wait_for(lambda: bot_waiting(survivor), what="the bot to answer the BSUID chat")
    bot_conversation = held(survivor).conversation_id
    assert idle_timers(account) == [f"idle-{bot_conversation}"] and executions(account) == []  # a bot phase: no execution
    time.sleep(1.1)  # the phone number's customer is the younger one: its chat is the one merged away
    add_agent("ana")
    merged = escalated_to(account, "ana", "wamid.M1-PHONE")
    agent_conversation = held(merged).conversation_id
    assert merged != survivor and active_chats("ana") == 1

    bot_before = bot_ids(survivor) | bot_ids(merged)
    both = with_both("Are you still there?", "wamid.M1-BOTH")
    deliver(account, both)
    assert chat_of(NUMBER, PHONE) == chat_of(NUMBER, user_id=BSUID) == survivor
    chat = held(survivor)
    assert (chat.mode, chat.assignee, chat.waiting_for, chat.conversation_id) == (ChatMode.AGENT, "ana", WaitingFor.AGENT, agent_conversation)
    assert chat.live and chat.workflow_token and chat.assigned_at and chat.merged_from == {merged}
    tombstone = held(merged)
    assert (tombstone.merged_into, tombstone.assignee, tombstone.workflow_token, tombstone.conversation_id) == (survivor, None, None, None)
    assert inbox_of("ana") == [survivor] and active_chats("ana") == 1
    # Superseded: the bot phase had no execution to stop; its idle timer went with it.
    assert [e["name"] for e in executions(account)] == [agent_conversation] and idle_timers(account) == []
    assert execution_of(account, agent_conversation)["status"] == "RUNNING" and not stopped(account, agent_conversation)
    assert {m["id"] for m in messages_of(survivor)} >= {"wamid.M1-BSUID", "wamid.M1-PHONE", "wamid.M1-BOTH"}
    assert bot_ids(survivor) == bot_before  # the agent has the chat: the bot did not answer the new message

    before = wiring.inbox().chats.table.get_item(Key={"chat_id": survivor})["Item"]
    deliver(account, both)  # Meta delivers it again
    assert wiring.inbox().chats.table.get_item(Key={"chat_id": survivor})["Item"] == before
    assert active_chats("ana") == 1 and len(executions(account)) == 1

    # The agent's workflow goes on in the surviving chat: ana closes it, the survey follows there.
    assert agent_call("POST", f"/api/chats/{survivor}/close", "ana")[0] == 200
    wait_for(lambda: held(survivor).waiting_for == WaitingFor.SURVEY, what="the survey in the surviving chat")
    assert messages_of(survivor)[-1]["type"] == "interactive" and messages_of(merged) == []
    assert active_chats("ana") == 0  # her one slot, freed by the close


def test_the_customers_next_message_wakes_the_carried_bot_conversation_in_the_surviving_chat(account):
    deliver(account, by_bsuid("Hello", "wamid.M2-BSUID"))
    survivor = chat_of(NUMBER, user_id=BSUID)
    wait_for(lambda: bot_waiting(survivor), what="the bot's first answer")
    deliver(account, by_bsuid("thanks, bye", "wamid.M2-BYE"))  # resolved: closed, survey
    wait_for(lambda: held(survivor).waiting_for == WaitingFor.SURVEY, what="the survey")
    score = by_bsuid("", "wamid.M2-SCORE")
    tapped = score["entry"][0]["changes"][0]["value"]["messages"][0]
    del tapped["text"]
    tapped.update({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "csat_2", "title": "😐 Okay"}}})
    deliver(account, score)  # the survey answered: the conversation is over
    wait_for(lambda: not held(survivor).live, what="the BSUID chat's conversation to end")
    time.sleep(1.1)
    deliver(account, by_phone("What are your opening hours?", "wamid.M2-PHONE"))
    merged = chat_of(NUMBER, PHONE)
    wait_for(lambda: bot_waiting(merged), what="the bot to answer the phone chat")
    conversation = held(merged).conversation_id
    bot_before = bot_ids(survivor) | bot_ids(merged)

    deliver(account, with_both("And on Saturday?", "wamid.M2-BOTH"))
    chat = held(survivor)
    assert chat.conversation_id == conversation and chat.mode == ChatMode.BOT
    # The merging webhook's own message woke the same execution, now answering in the surviving chat.
    wait_for(lambda: bot_ids(survivor) - bot_before and bot_waiting(survivor), what="the carried conversation's answer in the surviving chat")
    assert held(survivor).conversation_id == conversation
    # Woken, not restarted: the same bot phase, timed by its own idle timer, with no execution.
    assert idle_timers(account) == [f"idle-{conversation}"] and executions(account) == []
    assert messages_of(merged) == []


def test_both_chats_held_by_agents_the_surviving_chats_agent_keeps_it_the_other_is_freed(account):
    add_agent("ben")
    deliver(account, by_bsuid("I want to talk to a person", "wamid.M3-BSUID"))
    survivor = chat_of(NUMBER, user_id=BSUID)
    wait_for(lambda: held(survivor).offered_to == "ben", what="the offer to ben")
    assert agent_call("POST", f"/api/chats/{survivor}/accept", "ben")[0] == 200
    wait_for(lambda: held(survivor).waiting_for == WaitingFor.AGENT, what="ben's wait")
    ben_conversation = held(survivor).conversation_id
    agent_call("PUT", "/api/agents/ben/status", "ben", {"status": "away"})  # the next offer goes to ana
    time.sleep(1.1)
    add_agent("ana")
    merged = escalated_to(account, "ana", "wamid.M3-PHONE")
    ana_conversation = held(merged).conversation_id
    assert wiring.agents().reserve("ana")  # ana holds another customer's chat too
    assert (active_chats("ana"), active_chats("ben")) == (2, 1)

    both = with_both("Hello?", "wamid.M3-BOTH")
    deliver(account, both, both)
    chat = held(survivor)
    assert (chat.assignee, chat.conversation_id, chat.waiting_for) == ("ben", ben_conversation, WaitingFor.AGENT)
    assert stopped(account, ana_conversation) and not stopped(account, ben_conversation)
    assert inbox_of("ben") == [survivor] and inbox_of("ana") == []
    assert (active_chats("ben"), active_chats("ana")) == (1, 1)  # this chat's slot freed once, despite the retry
