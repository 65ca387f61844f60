"""The real conversation definition executed by moto, its Lambda tasks run by the real handler:
bot answers, escalation to an agent, nobody accepting, a takeover from the phone app, the window
closing while queued, and duplicate messages."""

from __future__ import annotations

import contextvars
import json
import time

import pytest

from coexist import wiring
from coexist.domain.chat import ConversationState
from functions.api import handler as api_function
from local.workflows import EXECUTE_STATE_MACHINES
from tests.conftest import API_TOKEN, Context, api_event, emulated_account
from tests.integration.helpers import deliver, messages_of, chat_of
from tests.integration.test_ingest import CUSTOMER, NUMBER, echo, text_message



def our_chat() -> str:
    """The customer's chat: its id is opaque, so it is looked up by the phone number."""
    return chat_of(NUMBER, CUSTOMER)


FAST = {
    # Long enough that a loaded machine still checks the bot's silence inside the cool-down and
    # accepts inside the offer.
    "takeover_cool_down_s": 5, "accept_timeout_s": 4, "assign_retry_s": 1, "max_assign_attempts": 2,
    "agent_idle_s": 3600, "survey_timeout_s": 30, "customer_idle_s": 3600,
    "unassigned_template": "appointment_reminder:en_US",
}


@pytest.fixture
def account(monkeypatch):
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps(FAST))
    with emulated_account(monkeypatch, config=EXECUTE_STATE_MACHINES, workflow=True) as emulated:
        yield emulated


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def chat() -> dict:
    return wiring.inbox_reader().chat(our_chat())


def says(text: str, at: int | None = None, wamid: str | None = None, reply: tuple[str, str] | None = None) -> dict:
    payload = text_message(wamid or f"wamid.{time.monotonic_ns()}", at or int(time.time()), body=text)
    if reply:
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        del message["text"]
        message.update({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": reply[0], "title": reply[1]}}})
    return payload


def bot_messages() -> list[dict]:
    return [m for m in messages_of(our_chat()) if m["source"] == "bot"]


def executions(account) -> list[dict]:
    return account.sfn.list_executions(stateMachineArn=account.env["CONVERSATION_STATE_MACHINE_ARN"])["executions"]


def started_after(account) -> str:
    """How the bot phase ended (`left_bot`), read from the one execution it started, which began at
    the choice that routes it."""
    [execution] = wait_for(lambda: executions(account), what="the execution the bot phase started")

    def entered() -> list[str]:
        history = account.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]

    assert wait_for(entered, what="the execution's first state")[0] == "LeftTheBot"
    return json.loads(account.sfn.describe_execution(executionArn=execution["executionArn"])["input"])["left_bot"]["Error"]


def idle_timers(account) -> list[str]:
    """The bot phases' idle timers still scheduled (coexist.conversation.workflow.IdleTimers)."""
    scheduler = account.session.client("scheduler")
    return [s["Name"] for s in scheduler.list_schedules(GroupName=account.env["IDLE_SCHEDULE_GROUP"])["Schedules"]]


def finished(account, chat_id: str | None = None) -> dict | None:
    """The chat's conversation once it has ended (our chat's, or `chat_id`'s): its execution, ended
    successfully, when its bot phase handed it on to one; None when the bot phase ended it (resolved,
    or the customer went quiet), which starts no execution."""
    chat_id = chat_id or our_chat()
    name = wiring.inbox().chats.get(chat_id).conversation_id
    wait_for(lambda: wiring.inbox().chats.get(chat_id).conversation_state == ConversationState.ENDED, what="the conversation to end")
    found = [e for e in executions(account) if e["name"] == name]
    if not found:
        return None
    [execution] = found
    described = wait_for(
        lambda: (d := account.sfn.describe_execution(executionArn=execution["executionArn"]))["status"] != "RUNNING" and d,
        what="the execution to finish",
    )
    assert described["status"] == "SUCCEEDED", described
    return described


def first_call_lets(monkeypatch, owner, name: str, meanwhile) -> list:
    """`owner.name`'s first call lets `meanwhile(*its arguments)` happen before it goes on (what
    arrives while it runs). Returns a list that holds True once it did."""
    real, happened = getattr(owner, name), []

    def patched(self, *args, **kwargs):
        if not happened:
            happened.append(True)
            meanwhile(*args)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, patched)
    return happened


def agent_call(method: str, path: str, agent: str, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "X-Agent-Id": agent, "Content-Type": "application/json"}
    event = api_event(method, path, json.dumps(body or {}).encode(), headers)
    response = api_function.lambda_handler(event, Context())
    return response["statusCode"], json.loads(response["body"])


def add_agent(agent_id: str, skills=("general",), available=True) -> None:
    assert agent_call("POST", "/api/agents", agent_id, {"agent_id": agent_id, "name": agent_id.title(), "skills": list(skills), "capacity": 2})[0] == 201
    if available:
        assert agent_call("PUT", f"/api/agents/{agent_id}/status", agent_id, {"status": "available"})[0] == 200


def test_the_bot_answers_and_resolves_then_the_survey_score_is_stored(account):
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    assert bot_messages()
    assert chat()["mode"] == "bot" and chat()["bot_intent"] == "opening_hours"
    deliver(account, says("thanks, bye"))
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    survey = bot_messages()[-1]
    assert survey["type"] == "interactive"
    deliver(account, says("", reply=("csat_3", "😊 Great")))
    finished(account)
    view = chat()
    assert (view["mode"], view["satisfaction_score"], view["conversation_state"]) == ("closed", 3, "ended")
    assert view["closed_at"] is not None


def test_a_resolving_bot_closes_in_its_turn_and_nothing_waits_for_the_survey(account):
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    deliver(account, says("thanks, bye"))
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    # The bot phase ended in the turn that resolved, outside the workflow: no execution, no state
    # transition, no idle timer left; the survey's answer is ingest's.
    assert finished(account) is None and executions(account) == [] and idle_timers(account) == []
    first = wiring.inbox().chats.get(our_chat()).conversation_id
    view, held = chat(), wiring.inbox().chats.get(our_chat())
    assert view["conversation_state"] == "ended" and view["mode"] == "closed"
    assert held.survey_until - int(time.time()) in range(FAST["survey_timeout_s"] - 5, FAST["survey_timeout_s"] + 1)
    deliver(account, says("", reply=("csat_1", "😞 Poor")))
    held = wiring.inbox().chats.get(our_chat())
    assert (held.satisfaction_score, held.waiting_for, held.survey_until) == (1, None, None)
    # A second answer is a message like any other: it starts the next conversation, not a new score.
    answered = len(bot_messages())
    deliver(account, says("", reply=("csat_3", "😊 Great")))
    wait_for(lambda: len(bot_messages()) > answered, what="the next conversation's first turn")
    assert chat()["satisfaction_score"] is None  # the new conversation's own, not yet given
    assert wiring.inbox().chats.get(our_chat()).conversation_id != first


def resolved_with_the_survey_asked(account) -> str:
    """A bot conversation the bot resolves, its survey asked: the conversation's id."""
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    deliver(account, says("thanks, bye"))
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    finished(account)
    return wiring.inbox().chats.get(our_chat()).conversation_id


def test_a_message_after_the_surveys_deadline_starts_a_new_conversation(account):
    first = resolved_with_the_survey_asked(account)
    # The survey's time passes unanswered (its deadline moved back instead of waiting it out).
    wiring.inbox().chats.table.update_item(Key={"chat_id": our_chat()}, UpdateExpression="SET survey_until = :past",
                                           ExpressionAttributeValues={":past": int(time.time()) - 1})
    assert chat()["waiting_for"] is None  # the inbox no longer shows it waiting for the survey
    answered = len(bot_messages())
    deliver(account, says("What are your opening hours on Sunday?"))
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the bot to answer the new question")
    assert chat()["mode"] == "bot" and chat()["satisfaction_score"] is None
    assert wiring.inbox().chats.get(our_chat()).conversation_id != first


def test_a_message_other_than_a_score_ends_the_survey_and_is_answered_as_a_new_conversation(account):
    first = resolved_with_the_survey_asked(account)
    answered = len(bot_messages())
    # Before the survey's deadline, the customer writes instead of tapping a score: not left unheard.
    question = says("Sorry, one more thing: what are your opening hours on Sunday?")
    deliver(account, question)
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the bot to answer the new question")
    held = wiring.inbox().chats.get(our_chat())
    assert (held.satisfaction_score, held.survey_until) == (None, None)  # the survey ended unanswered
    second = held.conversation_id
    assert second != first and chat()["mode"] == "bot"
    # The same webhook delivered again changes nothing: no third conversation, no second answer.
    before = len(bot_messages())
    deliver(account, question)
    assert wiring.inbox().chats.get(our_chat()).conversation_id == second and len(bot_messages()) == before


def test_customer_asks_for_a_person_agent_accepts_replies_and_closes(account):
    add_agent("ana")
    deliver(account, says("I want to talk to a person"))
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert chat()["mode"] == "queued" and chat()["queued_at"]
    assert started_after(account) == "BotEscalated" and idle_timers(account) == []  # the bot phase handed it on
    assert agent_call("POST", f"/api/chats/{our_chat()}/accept", "bob")[0] == 409  # not offered to bob
    code, view = agent_call("POST", f"/api/chats/{our_chat()}/accept", "ana")
    assert code == 200
    wait_for(lambda: chat()["mode"] == "agent" and chat()["assignee"] == "ana", what="ana to be assigned")
    code, sent = agent_call("POST", f"/api/chats/{our_chat()}/messages", "ana", {"type": "text", "text": "Hi, Ana here. How can I help?"})
    assert code == 202 and sent["source"] == "agent"
    assert chat()["first_human_reply_at"] is not None
    code, listing = agent_call("GET", "/api/chats?assignee=ana", "ana")
    assert [c["chat_id"] for c in listing["items"]] == [our_chat()]
    wait_for(lambda: chat()["waiting_for"] == "agent", what="the agent wait")
    assert agent_call("POST", f"/api/chats/{our_chat()}/close", "ana")[0] == 200
    wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")
    deliver(account, says("", reply=("csat_2", "😐 Okay")))
    finished(account)
    view = chat()
    assert (view["mode"], view["satisfaction_score"]) == ("closed", 2)
    assert [a["active_chats"] for a in agent_call("GET", "/api/agents", "ana")[1]["items"]] == [0]


def test_nobody_accepts_the_chat_is_rerouted_then_the_customer_is_told(account):
    add_agent("ana")
    add_agent("bea")
    deliver(account, says("agent please"))
    offered = set()
    wait_for(lambda: offered.add(chat()["offered_to"]) or chat()["conversation_state"] == "ended", timeout=30, what="routing to give up")
    assert {"ana", "bea"} <= offered  # offered to one, then re-routed to the other
    finished(account)
    view = chat()
    assert view["mode"] == "queued" and view["offered_to"] is None
    fallback = bot_messages()[-1]
    assert fallback["type"] == "text" and "busy" in fallback["text"]
    assert [a["active_chats"] for a in agent_call("GET", "/api/agents", "ana")[1]["items"]] == [0, 0]
    # An agent can still pick the chat up afterwards.
    assert agent_call("POST", f"/api/chats/{our_chat()}/accept", "bea")[0] == 200
    assert chat()["assignee"] == "bea" and chat()["mode"] == "agent"


def test_an_echo_mid_bot_hands_the_chat_to_the_phone_and_the_bot_stays_silent(account):
    deliver(account, says("hello"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to wait")
    answered = len(bot_messages())
    deliver(account, echo("wamid.from-phone", int(time.time()), text={"body": "Hi! It's Maria from the front desk."}))
    wait_for(lambda: chat()["mode"] == "app" and chat()["takeover_by"] == "app", what="the takeover")
    assert started_after(account) == "HumanTookOver" and idle_timers(account) == []  # the takeover's execution
    deliver(account, says("Thanks Maria, where do I park?"))
    time.sleep(1.0)
    assert len(bot_messages()) == answered  # the bot does not answer over a human
    assert chat()["mode"] == "app"
    # After the cool-down the bot may answer new messages again.
    wait_for(lambda: chat()["mode"] == "bot", timeout=15, what="the cool-down to end")
    deliver(account, says("where do I park?"))
    wait_for(lambda: len(bot_messages()) > answered, what="the bot to answer again")
    # The rest of the bot phase runs on the execution's own `BotTurn` (its heartbeat the idle timeout).
    assert len(executions(account)) == 1 and wiring.inbox().chats.get(our_chat()).token_heartbeat


def test_an_agent_who_answers_from_the_inbox_takes_the_bot_phase_over_and_the_execution_starts_there(account):
    add_agent("ana")
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    assert executions(account) == [] and len(idle_timers(account)) == 1
    code, sent = agent_call("POST", f"/api/chats/{our_chat()}/messages", "ana", {"type": "text", "text": "Ana here, I can help."})
    assert code == 202 and sent["source"] == "agent"
    # The API took the bot phase's token and started the execution at the takeover.
    assert started_after(account) == "HumanTookOver" and idle_timers(account) == []
    wait_for(lambda: chat()["waiting_for"] == "agent", what="the agent's wait")
    view = chat()
    assert (view["mode"], view["assignee"], view["takeover_by"]) == ("agent", "ana", "agent")
    answered = len(bot_messages())
    deliver(account, says("Thanks Ana"))
    time.sleep(0.5)
    assert len(bot_messages()) == answered  # the bot stays quiet: the agent has the chat


@pytest.mark.parametrize("from_the_phone", [True, False])
def test_a_person_who_answers_just_after_the_bot_escalated_keeps_the_chat(account, monkeypatch, from_the_phone):
    from coexist.conversation.steps import ConversationSteps

    add_agent("ana")
    add_agent("bob")

    def a_person_answers():
        # The bot phase has ended (the execution is starting): the answer finds no token to fail.
        # Sent as from outside the conversation function (a fresh context), as ingest and the API would.
        if from_the_phone:
            deliver(account, echo("wamid.phone-meanwhile", int(time.time()), text={"body": "Maria here."}))
        else:
            assert agent_call("POST", f"/api/chats/{our_chat()}/messages", "ana", {"type": "text", "text": "Ana here."})[0] == 202

    answered = first_call_lets(monkeypatch, ConversationSteps, "step_route", lambda *_: contextvars.Context().run(a_person_answers))
    deliver(account, says("I want to talk to a person"))
    [execution] = wait_for(lambda: executions(account), what="the escalation's execution")

    def entered() -> list[str]:
        history = account.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)["events"]
        return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]

    wait_for(lambda: "HumanTakeover" in entered(), what="the takeover")
    assert answered and entered()[:4] == ["LeftTheBot", "Escalate", "Routed", "HumanTakeover"]
    if from_the_phone:
        view = chat()
        assert (view["mode"], view["takeover_by"], view["offered_to"], view["queued_at"]) == ("app", "app", None, None)
        assert [a["active_chats"] for a in agent_call("GET", "/api/agents", "ana")[1]["items"]] == [0, 0]  # nobody was offered it
    else:
        wait_for(lambda: chat()["waiting_for"] == "agent", what="ana's wait")
        view = chat()
        assert (view["mode"], view["assignee"], view["takeover_by"], view["offered_to"], view["queued_at"]) == \
            ("agent", "ana", "agent", None, None)  # routing did not take the chat from her to offer it to bob


def test_the_window_closes_while_queued_so_the_fallback_is_a_template(account, monkeypatch):
    from coexist.store.templates import TemplateStore

    # Routing gives up after four waits of a second: always after the window (2 s left) has closed.
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps({**FAST, "max_assign_attempts": 5}))
    wiring.conversation_settings.cache_clear()
    TemplateStore(account.dynamodb.Table(account.env["TEMPLATES_TABLE"])).replace_all("102290129340398", [
        {"name": "appointment_reminder", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "We will be in touch."}]}])
    deliver(account, says("I need a human", at=int(time.time()) - 24 * 3600 + 2))
    finished(account)
    fallback = bot_messages()[-1]
    assert fallback["type"] == "template" and chat()["window_open"] is False


def test_duplicate_customer_messages_do_not_begin_a_second_conversation(account):
    message = says("What are your opening hours?", wamid="wamid.once")
    deliver(account, message, message)
    deliver(account, message)
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    answered = len(bot_messages())
    time.sleep(0.5)
    conversation_id = wiring.inbox().chats.get(our_chat()).conversation_id
    # One bot phase, timed by one idle timer; no execution until it hands the customer on.
    assert idle_timers(account) == [f"idle-{conversation_id}"] and executions(account) == []
    assert answered >= 1 and len(bot_messages()) == answered  # one answer, not one per copy


def test_a_returning_customers_second_message_before_the_first_turn_reaches_the_bot(account, monkeypatch):
    """A chat an earlier conversation left closed: the next conversation's first message claims it,
    and a message right behind it (customers often write in bursts) comes before the first turn has
    begun the conversation. The bot reads both."""
    from coexist.conversation.workflow import BotLoop

    add_agent("ana")
    deliver(account, says("What are your opening hours?"))
    wiring.inbox().chats.end(our_chat())  # the earlier conversation ends (as the customer's silence would end it)
    assert chat()["mode"] == "closed"
    behind = first_call_lets(monkeypatch, BotLoop, "begin",
                             lambda *_: contextvars.Context().run(deliver, account, says("I want to talk to a person")))
    deliver(account, says("Hello again"))
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")  # the bot read the second message
    assert behind and started_after(account) == "BotEscalated"


def test_a_chat_left_queued_or_just_answered_on_the_phone_does_not_restart_the_bot(account):
    deliver(account, echo("wamid.phone-first", int(time.time()), text={"body": "Hi, this is the clinic."}))
    deliver(account, says("Hi! Question about my bill"))
    time.sleep(0.5)
    assert executions(account) == [] and bot_messages() == []
    assert chat()["mode"] == "app"


def test_a_failed_start_is_retried_with_the_record_and_the_conversation_still_begins(account, monkeypatch):
    from coexist.conversation.workflow import BotLoop

    real_begin = BotLoop.begin
    failures = []

    def flaky_begin(self, chat_id, conversation_id):
        if not failures:
            failures.append(conversation_id)
            raise ConnectionError("Lambda unreachable")
        return real_begin(self, chat_id, conversation_id)

    monkeypatch.setattr(BotLoop, "begin", flaky_begin)
    message = says("What are your opening hours?", wamid="wamid.retry-me")
    from tests.integration.helpers import ingest_queued, post_webhook

    assert post_webhook(message)["statusCode"] == 200
    assert len(ingest_queued(account)[0]["batchItemFailures"]) == 1  # SQS will redeliver it
    deliver(account, message)
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot to answer and wait")
    assert failures == [wiring.inbox().chats.get(our_chat()).conversation_id] and bot_messages()


def test_leaving_an_emulated_account_stops_its_executions_so_none_wakes_in_the_next(account):
    """moto's execution threads outlive the mock; a chat parked in one account must not be acted on
    by its workflow once the next account (same table names) exists."""
    from moto.stepfunctions.parser.utils import TMP_THREADS

    from local.workflows import stop_workflows

    add_agent("ana")
    deliver(account, says("I want to talk to a person"))
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer, parked on the chat")
    [execution] = executions(account)
    parked = chat()

    stop_workflows(account.session)

    assert account.sfn.describe_execution(executionArn=execution["executionArn"])["status"] != "RUNNING"
    assert not [worker for worker in TMP_THREADS if worker.is_alive()]
    assert chat() == parked  # the timed-out wait did not run its catch (Assign) against the chat


def test_an_execution_started_moments_before_the_shutdown_is_stopped_once_its_worker_is_up():
    from local.workflows import _stop

    class Emulator:  # moto's refusal while the execution's worker sets itself up, twice
        calls = 0

        def stop_execution(self, executionArn, cause):
            self.calls += 1
            if self.calls <= 2:
                raise AttributeError("'NoneType' object has no attribute 'set_stop'")

    emulator = Emulator()
    _stop(emulator, "arn:execution")
    assert emulator.calls == 3
    with pytest.raises(AttributeError):  # one that never comes up is not waited for forever
        _stop(Emulator(), "arn:execution", attempts=2)


def test_a_message_that_arrives_while_the_bot_answers_is_the_next_turn_of_the_same_bot_phase(account, monkeypatch):
    from coexist.conversation.bot_turns import BotTurns

    # Pending: the token must not wait for the customer. Delivered as from outside the conversation
    # function (a fresh context), as the webhook and ingest would.
    arrived = first_call_lets(monkeypatch, BotTurns, "run", lambda *_: contextvars.Context().run(deliver, account, says("And on Saturday?")))
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: len(bot_messages()) >= 2 and chat()["waiting_for"] == "customer", what="both messages answered")
    assert arrived and executions(account) == []  # the bot's whole phase, outside the workflow
    assert chat()["mode"] == "bot" and not chat().get("pending_messages")


def test_each_customer_message_restarts_the_idle_timeout_and_silence_past_it_ends_the_conversation(account, monkeypatch):
    idle_s = 8
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps({**FAST, "customer_idle_s": idle_s}))
    wiring.reset(keep_clients=True)  # the idle timers and the executions take the timings of this configuration
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's first answer")
    started = time.monotonic()
    answered = len(bot_messages())
    time.sleep(idle_s / 2 + 1)
    deliver(account, says("And on Saturday?"))  # its heartbeat restarts the customer's idle time
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the second answer")
    time.sleep(max(0.0, started + idle_s + 1 - time.monotonic()))
    # Past the idle time counted from the first turn, the conversation still runs: the second
    # message moved its idle timer. The customer then goes quiet, and it ends, with no execution.
    assert chat()["conversation_state"] == "live" and len(idle_timers(account)) == 1
    assert finished(account) is None and executions(account) == [] and idle_timers(account) == []
    assert (chat()["conversation_state"], chat()["mode"], chat()["waiting_for"]) == ("ended", "closed", None)


def test_a_bot_turn_that_fails_after_the_first_hands_the_customer_to_a_person(account, monkeypatch):
    from coexist.conversation.bot_turns import BotTurns

    add_agent("ana")
    real_run, turns = BotTurns.run, []

    def fails_the_second_time(self, chat_item, messages):
        turns.append(messages)
        if len(turns) == 2:
            raise RuntimeError("the bot's provider is broken")
        return real_run(self, chat_item, messages)

    monkeypatch.setattr(BotTurns, "run", fails_the_second_time)
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's first answer")
    deliver(account, says("And on Saturday?"))
    # The turn ran outside the workflow (BotLoop): its failure fails the token, and the definition
    # escalates as it does for a failing task.
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert started_after(account) == "BotTurnFailed" and len(turns) == 2


def test_a_bot_turn_lambda_runs_again_after_a_crash_hands_its_messages_to_a_person(account):
    from coexist.conversation.workflow import turn_event

    add_agent("ana")
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's first answer")
    chats, chat_id = wiring.inbox().chats, our_chat()
    # What an attempt that timed out did: ingest took the parked token for a new message, and the
    # turn took the waiting messages, then died before answering.
    chats.add_pending(chat_id, "wamid.lost", {"type": "text", "text": "And on Saturday?", "timestamp": int(time.time())})
    wait = chats.take_customer_wait(chat_id)
    conversation_id = chats.get(chat_id).conversation_id
    assert wait.heartbeat and chats.start_bot_turn(chat_id, conversation_id, wait.token, turn="invocation-1")
    answered = len(bot_messages())

    from functions.conversation import handler as conversation_function  # Lambda's retry of the same event

    conversation_function.lambda_handler(turn_event(chat_id, conversation_id, wait.token, wait.heartbeat, turn="invocation-1"), Context())
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert len(bot_messages()) == answered  # no silence passed off as an answer, no answer twice
    assert started_after(account) == "BotTurnFailed"


def first_turn_again(chat_id: str) -> None:
    """A second invocation of a conversation's first turn, as a retried claiming record's begin makes
    one: the same token, an invocation of its own. Run as from outside the conversation function."""
    from coexist.conversation.workflow import turn_event
    from coexist.domain import bot_phase
    from coexist.domain.chat import Heartbeats
    from functions.conversation import handler as conversation_function

    conversation_id = wiring.inbox().chats.get(chat_id).conversation_id
    event = turn_event(chat_id, conversation_id, bot_phase.token(chat_id, conversation_id), Heartbeats.SUCCESS_ENDS)
    contextvars.Context().run(conversation_function.lambda_handler, event, Context())


def test_a_first_turn_invoked_twice_while_it_runs_answers_once_and_keeps_the_bot(account, monkeypatch):
    from coexist.conversation.bot_turns import BotTurns

    duplicated = first_call_lets(monkeypatch, BotTurns, "run", lambda chat_item, _messages: first_turn_again(chat_item.chat_id))
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's answer")
    answers = [m["text"] for m in bot_messages()]
    assert duplicated and answers and len(answers) == len(set(answers))  # each answered once
    assert chat()["mode"] == "bot" and executions(account) == []  # nobody was handed the customer


def test_a_first_turn_invoked_again_after_it_ended_changes_nothing(account):
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's answer")
    before, answered = wiring.inbox().chats.get(our_chat()), len(bot_messages())
    first_turn_again(our_chat())
    after = wiring.inbox().chats.get(our_chat())
    assert (after.workflow_token, after.bot_token, after.waiting_for) == (before.workflow_token, None, before.waiting_for)
    assert len(bot_messages()) == answered and executions(account) == []
    deliver(account, says("And on Saturday?"))  # the parked token still wakes the next turn
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the second answer")


def test_a_next_turn_that_cannot_be_started_leaves_the_token_for_the_records_retry(account, monkeypatch):
    from coexist.conversation.workflow import BotLoop

    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's first answer")
    answered = len(bot_messages())
    real_next_turn = BotLoop.next_turn

    def lambda_refuses(self, *args):
        raise RuntimeError("TooManyRequestsException")

    from functions.ingest import handler as ingest_function
    from tests.conftest import drain_inbound
    from tests.integration.helpers import post_webhook

    monkeypatch.setattr(BotLoop, "next_turn", lambda_refuses)
    assert post_webhook(says("And on Saturday?"))["statusCode"] == 200
    [event] = drain_inbound(account)
    assert ingest_function.lambda_handler(event, Context())["batchItemFailures"]  # the record fails, to be retried
    assert chat()["waiting_for"] == "customer"  # the token is back where the retry finds it
    monkeypatch.setattr(BotLoop, "next_turn", real_next_turn)
    assert ingest_function.lambda_handler(event, Context()) == {"batchItemFailures": []}  # Lambda's redelivery
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the retried record's turn")


def test_a_message_the_bot_waits_for_is_queued_and_takes_the_token_in_one_write(account, monkeypatch):
    from coexist.store.chats import ChatRepository

    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's first answer")
    answered, apart = len(bot_messages()), []
    for name in ("add_pending", "take_customer_wait"):
        real = getattr(ChatRepository, name)
        monkeypatch.setattr(ChatRepository, name, lambda self, *a, _real=real, _name=name, **k: apart.append(_name) or _real(self, *a, **k))
    deliver(account, says("And on Saturday?"))
    wait_for(lambda: len(bot_messages()) > answered and chat()["waiting_for"] == "customer", what="the second answer")
    assert apart == []  # neither write on its own: queue_taking_customer_wait did both


def losing_bot_turns(monkeypatch) -> list[dict]:
    """From here on, Lambda accepts each bot turn's invocation and never runs it (three failures, or
    too long queued: the turn dead-letter queue). Returns the turns lost."""
    from coexist.conversation.workflow import BotLoop

    lost = []

    class LambdaThatLosesTheTurn:
        def invoke(self, **request):
            lost.append(json.loads(request["Payload"]))
            return {"StatusCode": 202}

    real_init = BotLoop.__init__
    monkeypatch.setattr(BotLoop, "__init__", lambda self, workflow, _client, name: real_init(self, workflow, LambdaThatLosesTheTurn(), name))
    wiring.reset(keep_clients=True)  # the bot loop takes that Lambda
    return lost


@pytest.mark.parametrize("after_an_earlier_conversation", [False, True])
def test_a_turn_lambda_never_ran_hands_its_messages_to_a_person_at_the_idle_timeout(account, monkeypatch, after_an_earlier_conversation):
    add_agent("ana")
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps({**FAST, "customer_idle_s": 3}))
    wiring.reset(keep_clients=True)  # the idle timers and the executions take the timings of this configuration
    if after_an_earlier_conversation:  # it left the chat closed: the lost turn was to begin the next one
        deliver(account, says("What are your opening hours?"))
        assert finished(account) is None and chat()["mode"] == "closed"
    answered = len(bot_messages()) if after_an_earlier_conversation else 0
    lost = losing_bot_turns(monkeypatch)
    deliver(account, says("Can I bring my results on Monday?"))
    assert [event["action"] for event in lost] == ["converse"] and chat()["conversation_state"] == "live"
    # Nothing holds the token, nothing answers: at the idle timeout a person is offered the chat.
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert started_after(account) == "BotTurnFailed" and len(bot_messages()) == answered


def test_an_idle_timer_that_fires_before_a_late_turn_hands_the_customer_on_and_the_turn_leaves_them_be(account, monkeypatch):
    from functions.conversation import handler as conversation_function

    add_agent("ana")
    lost = losing_bot_turns(monkeypatch)  # the turn stays on its way
    deliver(account, says("What are your opening hours?"))
    [turn] = lost
    idle = {"action": "bot_idle", "chat_id": turn["chat_id"], "conversation_id": turn["conversation_id"], "token": turn["token"]}
    conversation_function.lambda_handler(idle, Context())  # the timer fires first: the turn counts as lost
    conversation_function.lambda_handler(turn, Context())  # the turn arrives after all, at once
    assert bot_messages() == []  # it found the token held and left, whatever routing had done yet
    wait_for(lambda: chat()["offered_to"] == "ana", what="the offer to ana")
    assert bot_messages() == [] and started_after(account) == "BotTurnFailed"


def test_a_dead_lettered_turn_redriven_answers_once_and_not_over_a_person(account, monkeypatch):
    from functions.conversation import handler as conversation_function

    lost = losing_bot_turns(monkeypatch)
    deliver(account, says("What are your opening hours?"))
    [turn] = lost  # as the turn dead-letter queue keeps it
    conversation_function.lambda_handler(turn, Context())  # redriven
    wait_for(lambda: chat()["waiting_for"] == "customer", what="the bot's answer")
    answered = len(bot_messages())
    assert answered and executions(account) == []
    conversation_function.lambda_handler(turn, Context())  # redriven twice: the token waits for the customer now
    assert len(bot_messages()) == answered and chat()["waiting_for"] == "customer"
    # A turn lost after a person took over is redriven in vain: the bot never answers over them.
    deliver(account, says("And on Saturday?"))
    [_, later] = lost
    deliver(account, echo("wamid.phone-answer", int(time.time()), text={"body": "We open at 9 on Saturdays."}))
    conversation_function.lambda_handler(later, Context())
    assert len(bot_messages()) == answered and started_after(account) == "HumanTookOver"


@pytest.mark.parametrize("from_the_phone", [False, True])
@pytest.mark.parametrize("returning_customer", [False, True])
def test_a_person_who_answers_while_a_turn_is_in_flight_gets_the_conversation_at_once(account, monkeypatch, from_the_phone, returning_customer):
    add_agent("ana")
    if returning_customer:  # an earlier conversation left the chat closed: the first turn would begin the next
        deliver(account, says("What are your opening hours?"))
        wiring.inbox().chats.end(our_chat())
    answered = len(bot_messages()) if returning_customer else 0
    lost = losing_bot_turns(monkeypatch)  # invoked, never started: in flight, or lost
    deliver(account, says("Can I bring my results on Monday?"))
    [turn] = lost
    timer = f"idle-{turn['conversation_id']}"
    assert executions(account) == [] and timer in idle_timers(account)
    if from_the_phone:
        deliver(account, echo("wamid.phone-answer", int(time.time()), text={"body": "Yes, bring them."}))
    else:
        assert agent_call("POST", f"/api/chats/{our_chat()}/messages", "ana", {"type": "text", "text": "Yes, bring them."})[0] == 202
    # Nobody held the token to fail, yet the execution starts at the takeover, not a day later.
    assert started_after(account) == "HumanTookOver" and timer not in idle_timers(account)
    from functions.conversation import handler as conversation_function

    conversation_function.lambda_handler(turn, Context())  # the turn comes after all: it leaves the chat to them
    assert len(bot_messages()) == answered
    if not from_the_phone:
        wait_for(lambda: chat()["waiting_for"] == "agent", what="the agent's wait")
        assert agent_call("POST", f"/api/chats/{our_chat()}/close", "ana")[0] == 200
        wait_for(lambda: chat()["waiting_for"] == "survey", what="the survey")


def test_a_lost_turn_after_a_takeover_whose_start_failed_is_handed_to_that_person_at_the_idle_timeout(account, monkeypatch):
    from coexist.conversation.signals import Signals

    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps({**FAST, "customer_idle_s": 3}))
    losing_bot_turns(monkeypatch)
    deliver(account, says("Can I bring my results on Monday?"))
    monkeypatch.setattr(Signals, "_human_took_over", lambda self, chat_id, before, by_agent=None: self.chats.take_over(chat_id, by_agent=by_agent))
    deliver(account, echo("wamid.phone-answer", int(time.time()), text={"body": "Yes, bring them."}))
    assert executions(account) == [] and chat()["mode"] == "app"
    assert started_after(account) == "HumanTookOver"  # the idle timer found the turn lost


def test_a_customer_who_goes_quiet_ends_the_conversation_without_a_survey(account, monkeypatch):
    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps({**FAST, "customer_idle_s": 3}))
    wiring.reset(keep_clients=True)  # the idle timers and the executions take the timings of this configuration
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: bot_messages(), what="the bot's answer")
    finished(account)
    view = chat()
    assert (view["conversation_state"], view["mode"], view["waiting_for"]) == ("ended", "closed", None)
    from coexist.conversation.settings import ConversationSettings

    said = [m["text"] for m in bot_messages()]
    assert said and ConversationSettings().survey_question not in said  # no survey after silence


def test_a_person_who_answers_while_the_bot_runs_is_never_talked_over(account, monkeypatch):
    from coexist.conversation.bot_turns import BotTurns

    real_run, answered_from_phone = BotTurns.run, []

    def person_answers_meanwhile(self, chat_item, messages):
        outcome = real_run(self, chat_item, messages)
        if not answered_from_phone:
            answered_from_phone.append(True)
            # After the bot decided, before its reply is stored: the echo takes the chat and the turn's token.
            contextvars.Context().run(deliver, account, echo("wamid.from-phone", int(time.time()), text={"body": "Maria here."}))
        return outcome

    monkeypatch.setattr(BotTurns, "run", person_answers_meanwhile)
    deliver(account, says("What are your opening hours?"))
    wait_for(lambda: chat()["mode"] == "app" and chat()["takeover_by"] == "app", what="the takeover")
    time.sleep(1.0)
    assert answered_from_phone and bot_messages() == []  # the bot's answer was neither stored nor sent
    # Nor did its turn park a wait for the customer, or fail: the phone keeps the chat.
    assert chat()["waiting_for"] != "customer" and chat()["mode"] == "app"


def test_a_long_message_the_chat_does_not_carry_is_read_and_answered(account):
    from coexist.store.chats import CARRIED_TEXT_MAX_BYTES

    deliver(account, says("What are your opening hours? " + "please " * (CARRIED_TEXT_MAX_BYTES // 7)))
    wait_for(lambda: chat()["waiting_for"] == "customer" and bot_messages(), what="the bot's answer")
    assert any("we are open" in m["text"].lower() for m in bot_messages())  # the question was read
