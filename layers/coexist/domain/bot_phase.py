"""The bot phase's token: what a conversation's bot phase parks on its chat instead of a task token.

The bot phase runs outside the workflow: ingest begins it with the conversation's first message and
each customer message runs the next turn (coexist.conversation.workflow.BotLoop). Its token stands
where the phase's Step Functions task token stood, so the chat's one-at-a-time rules hold unchanged:
a turn parks it for the customer (`workflow_token`) or holds it while it runs (`bot_token`), and
whoever has the news takes it with a conditional write. It names no task: ending the phase with an
error starts the conversation's execution where that error leads (a person took over, the bot
escalated), and a phase the bot resolves, or the customer leaves, never starts one.

It carries the chat the conversation began on and the conversation (the execution's name), which
is all anyone it reaches needs; neither is a customer's identifier (chat ids are opaque). Short and
no credential, it is held whole on the chat.
"""

from __future__ import annotations

PREFIX = "bot-phase:"


def token(chat_id: str, conversation_id: str) -> str:
    return f"{PREFIX}{chat_id}/{conversation_id}"


def is_bot_phase(token_: str | None) -> bool:
    return bool(token_) and token_.startswith(PREFIX)


def parsed(token_: str) -> tuple[str, str]:
    """(chat id, conversation id) of a bot phase's token."""
    chat_id, _, conversation_id = token_.removeprefix(PREFIX).partition("/")
    if not token_.startswith(PREFIX) or not chat_id or not conversation_id:
        raise ValueError("not a bot phase's token")
    return chat_id, conversation_id
