"""Talking to the conversation executions (Step Functions), and the bot phase that runs before one.

A conversation's bot phase runs outside Step Functions (coexist.domain.bot_phase): its turns are the
conversation function invoked directly (`BotLoop`), its idle timeout a one-time schedule (`IdleTimers`),
and its execution starts only when the phase hands the conversation on: to a person who took over,
or to routing when the bot escalates or fails. A bot that resolves, or a customer who goes quiet,
costs no state transition at all. `Workflow` takes a bot phase's token wherever it takes a task token,
so the code that parks, takes and signals tokens is the same for both.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

from botocore.exceptions import ClientError

from coexist.domain import bot_phase
from coexist.domain.chat import Heartbeats

HUMAN_TOOK_OVER = "HumanTookOver"
AGENT_RELEASED = "AgentReleased"
# How a bot turn leaves the message loop (a task's error, so the definition needs no choice state).
BOT_ESCALATED = "BotEscalated"
BOT_RESOLVED = "BotResolved"
BOT_TURN_FAILED = "BotTurnFailed"  # a turn BotLoop ran failed: the definition's catch-all escalates
SUPERSEDED_BY_MERGE = "SupersededByMerge"  # a stop's error: the chat was merged and the other conversation kept
CHAT_ERASED = "ChatErased"  # a stop's error: the customer's data was erased while the conversation ran
# A token whose wait already ended (timed out, or signalled by someone else) is not an error here.
_STALE = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}


def execution_name(chat_id: str, first_message_id: str) -> str:
    """Deterministic, so a duplicate start is refused by Step Functions; hashed, so no phone
    number ends up in execution names, logs or the console."""
    return "conv-" + hashlib.sha256(f"{chat_id}\n{first_message_id}".encode()).hexdigest()[:48]


class IdleTimers:
    """The customer's idle timeout of a bot phase: one EventBridge Scheduler one-time schedule per
    conversation (`coexist.reminders.schedules.OneTimeSchedules`, in the idle timers' own group),
    moved to `idle_s` after each customer message and deleted when the phase ends. When it fires, the
    conversation function ends the conversation quietly if the bot still waits for that customer and
    nothing newer came (`ConversationSteps.step_bot_idle`); Scheduler fires within a minute of the time."""

    def __init__(self, schedules, idle_s: int, clock=time.time):
        self.schedules = schedules
        self.idle_s = idle_s
        self.clock = clock

    @staticmethod
    def name(conversation_id: str) -> str:
        return f"idle-{conversation_id}"

    def restart(self, token: str) -> None:
        chat_id, conversation_id = bot_phase.parsed(token)
        self.schedules.put(self.name(conversation_id), int(self.clock()) + self.idle_s, {
            "action": "bot_idle", "chat_id": chat_id, "conversation_id": conversation_id, "token": token})

    def cancel(self, conversation_id: str) -> None:
        self.schedules.delete(self.name(conversation_id))


class Workflow:
    def __init__(self, sfn_client, state_machine_arn: str, idle_timers: IdleTimers | None = None, timeouts: dict | None = None):
        self.sfn = sfn_client
        self.arn = state_machine_arn
        self.idle_timers = idle_timers
        self.timeouts = timeouts or {}  # what its executions wait for (ConversationSettings.timeouts)

    def start(self, name: str, chat_id: str, left_bot: dict | None = None) -> bool:
        """Start the conversation `name`; its waits read `timeouts`. `left_bot`: how its bot phase
        ended ({"Error", "Cause"}), where the definition begins."""
        document = {"chat_id": chat_id, "conversation_id": name, "timeouts": self.timeouts}
        if left_bot is not None:
            document["left_bot"] = left_bot
        try:
            self.sfn.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(document))
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise

    def stop(self, name: str, error: str, cause: str) -> bool:
        """Stop the execution `name` (a conversation ended from outside), and the idle timer of its
        bot phase if it is still in it. Stopping one that has finished already, or is not known (a
        bot phase starts none), is not an error: False."""
        if self.idle_timers is not None:
            self.idle_timers.cancel(name)
        state_machine = self.arn.split(":")
        execution_arn = ":".join(state_machine[:5] + ["execution"] + state_machine[6:] + [name])
        try:
            self.sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause)
            return True
        except ClientError as error_:
            if error_.response["Error"]["Code"] in ("ExecutionDoesNotExist", "ValidationException"):
                return False
            raise

    def heartbeat(self, token: str) -> bool:
        """Restart the heartbeat timer of the task waiting on `token` (a bot phase's: its idle
        timer); False: its wait has ended."""
        if bot_phase.is_bot_phase(token):
            self.idle_timers.restart(token)
            return True
        return self._signal(lambda: self.sfn.send_task_heartbeat(taskToken=token))

    def succeed(self, token: str, output: dict) -> bool:
        """The wait on `token` is over with `output`. A bot phase that succeeds has ended the
        conversation itself (it resolved): only its idle timer goes."""
        if bot_phase.is_bot_phase(token):
            self.idle_timers.cancel(bot_phase.parsed(token)[1])
            return True
        return self._signal(lambda: self.sfn.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, error: str, cause: str) -> bool:
        """The wait on `token` fails with `error`, which the definition routes. A bot phase's starts
        the conversation's execution there (by its name: a second start is refused, False)."""
        if bot_phase.is_bot_phase(token):
            chat_id, conversation_id = bot_phase.parsed(token)
            self.idle_timers.cancel(conversation_id)
            return self.start(conversation_id, chat_id, left_bot={"Error": error, "Cause": cause})
        return self._signal(lambda: self.sfn.send_task_failure(taskToken=token, error=error, cause=cause))

    @staticmethod
    def _signal(call) -> bool:
        try:
            call()
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] in _STALE:
                return False
            raise


class BotLoop:
    """The bot's message loop outside the workflow's transitions.

    A bot phase (coexist.domain.bot_phase) begins with the conversation's first message: ingest
    starts its idle timer and runs the first turn. Every turn after it is run the same way: whoever
    takes the token the bot left for the customer (ingest; a turn that found messages waiting at its
    end) restarts the idle timer and invokes the conversation function asynchronously, with the same
    token. The phase ends when a turn fails the token (escalated, a person took over: the execution
    starts there), resolves (no execution), or the customer stays silent past the idle time. Turns
    stay one at a time: only the holder of the parked token starts one. A phase that an earlier
    definition's `BotTurn` task holds (a Step Functions token, timed by heartbeats) runs the same way."""

    def __init__(self, workflow: Workflow, lambda_client, function_name: str):
        self.workflow = workflow
        self.lambda_ = lambda_client
        self.function_name = function_name

    def begin(self, chat_id: str, conversation_id: str) -> None:
        """The conversation's first turn, on its bot phase's token, with its idle timer started."""
        token = bot_phase.token(chat_id, conversation_id)
        self.next_turn(chat_id, conversation_id, token, Heartbeats.SUCCESS_ENDS)

    def next_turn(self, chat_id: str, conversation_id: str, token: str, heartbeat: Heartbeats) -> bool:
        """Run the next bot turn on `token`. False: the task no longer waits (the customer's silence
        timed it out, or the execution was stopped), so there is no turn to run."""
        if not self.workflow.heartbeat(token):
            return False
        self.lambda_.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=json.dumps(
            turn_event(chat_id, conversation_id, token, heartbeat)).encode())
        return True


def turn_event(chat_id: str, conversation_id: str, token: str, heartbeat: Heartbeats, turn: str | None = None) -> dict:
    """The conversation function's event for a bot turn BotLoop invokes: the one the definition's
    `BotTurn` task sends (`heartbeat` as its payload has it), marked `direct` (nobody waits for its
    result), with an id of its own (`turn`, new for each invocation): Lambda's retries of the event
    carry it, a second invocation of the same turn does not (ChatRepository.start_bot_turn)."""
    return {"action": "converse", "chat_id": chat_id, "conversation_id": conversation_id, "token": token,
            "heartbeat": int(heartbeat), "direct": True, "turn": turn or uuid.uuid4().hex}
