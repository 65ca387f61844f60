"""Talking to the conversation executions (Step Functions)."""

from __future__ import annotations

import hashlib
import json

from botocore.exceptions import ClientError

HUMAN_TOOK_OVER = "HumanTookOver"
AGENT_RELEASED = "AgentReleased"
# How a bot turn leaves the message loop (a task's error, so the definition needs no choice state).
BOT_ESCALATED = "BotEscalated"
BOT_RESOLVED = "BotResolved"
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
