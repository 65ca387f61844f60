"""The conversation workflow's definition and the pure parts of its steps."""

from __future__ import annotations

import json

import pytest

from coexist.conversation import survey
from coexist.conversation.bot_turns import reply_request
from coexist.conversation.definition import FUNCTION_PLACEHOLDER, definition_path, render
from coexist.conversation.settings import ConversationSettings
from coexist.conversation.workflow import execution_name
from coexist.bots.model import BotReply
from coexist.outbound.requests import parse_send_request
from coexist.store.agents import pick_agent

DEFINITION = json.loads(definition_path().read_text())
STATES = DEFINITION["States"]


def _targets(state: dict) -> set[str]:
    targets = {state.get("Next"), state.get("Default")}
    targets |= {c["Next"] for c in state.get("Choices", [])}
    targets |= {c["Next"] for c in state.get("Catch", [])}
    return {t for t in targets if t}


def test_every_transition_names_a_state_and_every_state_is_reachable():
    assert DEFINITION["StartAt"] in STATES
    reachable, frontier = set(), [DEFINITION["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name in reachable:
            continue
        reachable.add(name)
        missing = _targets(STATES[name]) - set(STATES)
        assert not missing, f"{name} goes to unknown {missing}"
        frontier += list(_targets(STATES[name]))
    assert reachable == set(STATES)


def test_every_task_runs_the_conversation_function_and_waits_pass_their_token():
    tasks = {n: s for n, s in STATES.items() if s["Type"] == "Task"}
    assert tasks
    for name, state in tasks.items():
        assert state["Parameters"]["FunctionName"] == "${" + FUNCTION_PLACEHOLDER + "}", name
        payload = state["Parameters"]["Payload"]
        assert payload["action"] and payload["chat_id.$"] == "$.chat_id"
        if state["Resource"].endswith(".waitForTaskToken"):
            assert payload["token.$"] == "$$.Task.Token", name
            assert "TimeoutSeconds" in state or "TimeoutSecondsPath" in state, f"{name} could wait forever"


def test_waits_read_their_timeouts_from_the_execution_input():
    paths = {s.get("TimeoutSecondsPath") or s.get("HeartbeatSecondsPath") or s.get("SecondsPath") for s in STATES.values()} - {None}
    from_input = {p.removeprefix("$.timeouts.") for p in paths if p.startswith("$.timeouts.")}
    # Every timeout the input carries is read, and every wait reads one of them or a step's result;
    # the survey's is read by the function (its deadline), and by the definition before's `Close`.
    assert from_input == set(ConversationSettings().timeouts()) - {"survey_timeout_seconds"}
    assert all(p.startswith(("$.timeouts.", "$.wake.value.", "$.cooldown.value.")) for p in paths), paths


def test_render_fills_every_task_and_leaves_valid_json():
    rendered = json.loads(render("arn:aws:lambda:eu-west-1:123456789012:function:conv"))
    assert "${" not in json.dumps(rendered)
    assert all(s["Parameters"]["FunctionName"].endswith(":conv") for s in rendered["States"].values() if s["Type"] == "Task")


def test_settings_refuse_unknown_keys():
    with pytest.raises(ValueError, match="accept_timout_s"):
        ConversationSettings.from_environ({"COEXIST_CONVERSATION": json.dumps({"accept_timout_s": 5})})
    assert ConversationSettings.from_environ({"COEXIST_CONVERSATION": '{"accept_timeout_s": 5}'}).accept_timeout_s == 5


def test_execution_names_are_deterministic_valid_and_hide_the_phone_number():
    name = execution_name("106540352242922_16505551234", "wamid.A")
    assert name == execution_name("106540352242922_16505551234", "wamid.A")
    assert name != execution_name("106540352242922_16505551234", "wamid.B")
    assert len(name) <= 80 and name.replace("-", "").isalnum()
    assert "16505551234" not in name


def test_least_loaded_available_agent_with_the_skill_first():
    agents = [
        {"agent_id": "a", "skills": ["billing"], "capacity": 2, "active_chats": 0},
        {"agent_id": "b", "skills": ["general"], "capacity": 4, "active_chats": 1},
        {"agent_id": "c", "skills": ["general"], "capacity": 2, "active_chats": 1},
        {"agent_id": "d", "skills": ["general"], "capacity": 1, "active_chats": 1},
    ]
    assert [a["agent_id"] for a in pick_agent(agents, "general", set())] == ["b", "c"]
    assert [a["agent_id"] for a in pick_agent(agents, None, {"b"})] == ["a", "c"]
    assert pick_agent(agents, "cardiology", set()) == []


def test_bot_replies_become_valid_send_requests():
    text = parse_send_request(reply_request(BotReply("We open at 8.")))
    assert text.type == "text"
    buttons = parse_send_request(reply_request(BotReply("Anything else?", (("hours", "Opening hours"), ("talk_to_person", "Talk to a person")))))
    assert buttons.type == "interactive" and [b.id for b in buttons.buttons] == ["hours", "talk_to_person"]


def test_the_survey_is_a_valid_request_and_only_its_buttons_give_a_score():
    asked = parse_send_request(survey.request("How did we do today?"))
    assert asked.type == "interactive" and [b.id for b in asked.buttons] == ["csat_3", "csat_2", "csat_1"]
    assert [survey.score_of(b.id) for b in asked.buttons] == [3, 2, 1]
    for other in (None, "", "csat_", "csat_x", "hours", "reminder:short:confirm"):
        assert survey.score_of(other) is None, other


# --- the bot phase outside the workflow -----------------------------------------------------------

def test_a_bot_phases_token_names_its_chat_and_conversation_and_the_chat_holds_it_whole():
    from coexist.domain import bot_phase
    from coexist.store.task_tokens import TaskTokens, names

    token = bot_phase.token("cabc", "conv-1")
    assert bot_phase.is_bot_phase(token) and not bot_phase.is_bot_phase("AQCEAAAA-a-task-token") and not bot_phase.is_bot_phase(None)
    assert bot_phase.parsed(token) == ("cabc", "conv-1")
    with pytest.raises(ValueError):
        bot_phase.parsed("AQCEAAAA-a-task-token")

    class NoTable:  # a task token would be put here; a bot phase's never is
        def put_item(self, **_):
            raise AssertionError("a bot phase's token is not kept in the task tokens table")

    tokens = TaskTokens(NoTable())
    assert tokens.keep(token) == tokens.reference(token) == token and tokens.resolve(token) == token
    assert names(token, token)


def test_an_execution_begins_where_its_bot_phase_ended():
    start = STATES[DEFINITION["StartAt"]]
    assert DEFINITION["StartAt"] == "LeftTheBot" and start["Type"] == "Choice"
    routes = {c["StringEquals"]: c["Next"] for c in start["Choices"] if c["Variable"] == "$.left_bot.Error"}
    # A person took over: the takeover's states; the bot escalated or a turn failed: routing.
    assert routes == {"HumanTookOver": "HumanTakeover"} and start["Default"] == "Escalate"


class _Scheduler:
    def __init__(self):
        self.calls = []

    def put(self, name, at, payload):
        self.calls.append(("put", name, at, payload))

    def delete(self, name):
        self.calls.append(("delete", name))
        return True


class _StepFunctions:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda **kwargs: self.calls.append((name, kwargs))


def _workflow():
    from coexist.conversation.workflow import IdleTimers, Workflow

    scheduler, sfn = _Scheduler(), _StepFunctions()
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:coexist-dev-conversation"
    return Workflow(sfn, arn, IdleTimers(scheduler, idle_s=600, clock=lambda: 1_000), {"accept_timeout_seconds": 5}), scheduler, sfn


def test_a_bot_phase_is_timed_by_its_idle_timer_and_starts_no_execution_when_it_resolves():
    from coexist.domain import bot_phase

    workflow, scheduler, sfn = _workflow()
    token = bot_phase.token("cabc", "conv-1")
    assert workflow.heartbeat(token)  # a customer message: the timer moved to the idle time from now
    assert scheduler.calls == [("put", "idle-conv-1", 1_600, {"action": "bot_idle", "chat_id": "cabc", "conversation_id": "conv-1", "token": token})]
    assert workflow.succeed(token, {"resolved": True})  # resolved in its turn: only the timer goes
    assert scheduler.calls[-1] == ("delete", "idle-conv-1") and sfn.calls == []


def test_a_bot_phase_that_fails_starts_its_execution_with_how_it_ended():
    from coexist.domain import bot_phase

    workflow, scheduler, sfn = _workflow()
    assert workflow.fail(bot_phase.token("cabc", "conv-1"), "BotEscalated", "the customer asked for a person")
    [(call, started)] = sfn.calls
    assert call == "start_execution" and started["name"] == "conv-1" and scheduler.calls == [("delete", "idle-conv-1")]
    assert json.loads(started["input"]) == {"chat_id": "cabc", "conversation_id": "conv-1", "timeouts": {"accept_timeout_seconds": 5},
                                            "left_bot": {"Error": "BotEscalated", "Cause": "the customer asked for a person"}}


def test_a_task_token_still_signals_its_task():
    workflow, scheduler, sfn = _workflow()
    assert workflow.heartbeat("AQCEAAAA-task") and workflow.fail("AQCEAAAA-task", "HumanTookOver", "a person answered")
    assert [name for name, _ in sfn.calls] == ["send_task_heartbeat", "send_task_failure"] and scheduler.calls == []
