"""Talking to the conversation executions (Step Functions)."""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import ClientError

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


class Workflow:
    def __init__(self, sfn_client, state_machine_arn: str):
        self.sfn = sfn_client
        self.arn = state_machine_arn

    def start(self, name: str, chat_id: str, timeouts: dict) -> bool:
        """Start the conversation `name`; its waits read `timeouts` (ConversationSettings.timeouts)."""
        try:
            self.sfn.start_execution(stateMachineArn=self.arn, name=name,
                                     input=json.dumps({"chat_id": chat_id, "conversation_id": name, "timeouts": timeouts}))
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise

    def stop(self, name: str, error: str, cause: str) -> bool:
        """Stop the execution `name` (a conversation ended from outside). Stopping one that has
        finished already, or is not known, is not an error: False."""
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
        """Restart the heartbeat timer of the task waiting on `token`; False: its wait has ended."""
        return self._signal(lambda: self.sfn.send_task_heartbeat(taskToken=token))

    def succeed(self, token: str, output: dict) -> bool:
        return self._signal(lambda: self.sfn.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, error: str, cause: str) -> bool:
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

    The definition's `BotTurn` task waits on one token for the whole bot phase, timed by a heartbeat
    of the customer's idle time. A customer message then costs no state transition: whoever takes
    the token the bot left for the customer (ingest; a turn that found messages waiting at its end)
    restarts the idle timer with a heartbeat and runs the next turn by invoking the conversation
    function asynchronously, with the same token. The task ends only when a turn fails the token
    (escalated, resolved, a person took over) or the customer stays silent past the heartbeat.
    Turns stay one at a time: only the holder of the parked token starts one."""

    def __init__(self, workflow: Workflow, lambda_client, function_name: str):
        self.workflow = workflow
        self.lambda_ = lambda_client
        self.function_name = function_name

    def next_turn(self, chat_id: str, conversation_id: str, token: str, heartbeat: Heartbeats) -> bool:
        """Run the next bot turn on `token`. False: the task no longer waits (the customer's silence
        timed it out, or the execution was stopped), so there is no turn to run."""
        if not self.workflow.heartbeat(token):
            return False
        self.lambda_.invoke(FunctionName=self.function_name, InvocationType="Event", Payload=json.dumps(
            turn_event(chat_id, conversation_id, token, heartbeat)).encode())
        return True


def turn_event(chat_id: str, conversation_id: str, token: str, heartbeat: Heartbeats) -> dict:
    """The conversation function's event for a bot turn BotLoop invokes: the one the definition's
    `BotTurn` sends the first turn (`heartbeat` as its payload had it), marked `direct` (nobody
    waits for its result)."""
    return {"action": "converse", "chat_id": chat_id, "conversation_id": conversation_id, "token": token,
            "heartbeat": int(heartbeat), "direct": True}
