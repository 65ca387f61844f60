"""Waking the conversation workflow: what ingest and the agent API do with the tokens it parks."""

from __future__ import annotations

import time
from dataclasses import dataclass

from coexist.conversation.workflow import AGENT_RELEASED, HUMAN_TOOK_OVER, Workflow, execution_name
from coexist.store.agents import AgentStore
from coexist.store.conversations import LIVE, ConversationStore


class Conflict(Exception):
    """The chat is not in a state that allows this action (HTTP 409)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Signals:
    conversations: ConversationStore
    workflow: Workflow
    agents: AgentStore
    takeover_cool_down_s: int = 1800
    clock: object = time.time
    connect: object | None = None  # coexist.conversation.connect.ConnectDesk: humans on Amazon Connect

    # --- from ingest ---------------------------------------------------------------------------
    def customer_wrote(self, chat_id: str, message_id: str, reply_id: str | None) -> str:
        """A new customer message. Returns what happened (for metrics and tests)."""
        chat = self.conversations.get(chat_id) or {}
        if chat.get("waiting_for") == "survey":
            token = self.conversations.take_token(chat_id, "survey")
            if token:
                self.workflow.succeed(token, {"message_id": message_id, "reply_id": reply_id})
                return "survey_answer"
        if chat.get("conversation_state") != LIVE:
            if self._person_has_it(chat):
                return "human_handles"
            self.conversations.add_pending(chat_id, message_id)
            name = execution_name(chat_id, message_id)
            if self.conversations.claim(chat_id, name):
                self.workflow.start(name, chat_id)
                return "started"
            return "queued_for_bot"
        if self.connect is not None and self.connect.is_active(chat):
            return self.connect.relay(chat_id, message_id, chat)  # the Connect agent sees it too
        if chat.get("mode") != "bot":
            return "human_handles"  # an agent or the phone app has it; the inbox shows the message
        self.conversations.add_pending(chat_id, message_id)
        if chat.get("conversation_id") == execution_name(chat_id, message_id):
            # This message claimed the chat before, but starting the execution failed (the record is
            # being retried): start it now; a start that did happen is refused by its name.
            self.workflow.start(chat["conversation_id"], chat_id)
        if chat.get("waiting_for") == "customer":
            token = self.conversations.take_token(chat_id, "customer")
            if token:
                self.workflow.succeed(token, {"message_id": message_id})
                return "woke_bot"
        return "queued_for_bot"

    def business_app_replied(self, chat_id: str) -> bool:
        """An echo: someone answered from the phone. The bot stops mid-step and stays quiet."""
        chat = self.conversations.get(chat_id) or {}
        if chat.get("conversation_state") == LIVE:
            self.conversations.set_if_absent(chat_id, "first_human_reply_at", int(self.clock()))
        return self._human_took_over(chat_id, "app")

    # --- from the agent API ----------------------------------------------------------------------
    def agent_replied(self, chat_id: str, agent_id: str) -> bool:
        chat = self.conversations.get(chat_id) or {}
        if "first_human_reply_at" not in chat:  # the first-response time is set once
            self.conversations.set_if_absent(chat_id, "first_human_reply_at", int(self.clock()))
        if chat.get("mode") in ("bot", "app"):
            return self._human_took_over(chat_id, "agent", assignee=agent_id)
        return False

    def accept(self, chat_id: str, agent_id: str) -> None:
        token = self.conversations.take_token(chat_id, "accept", offered_to=agent_id)
        if token and self.workflow.succeed(token, {"agent_id": agent_id}):
            return
        chat = self.conversations.get(chat_id)
        if chat is None:
            raise Conflict("not_found", "no such chat")
        if chat.get("mode") == "queued" and chat.get("conversation_state") != LIVE:
            # Routing gave up earlier (nobody accepted): an agent can still pick the chat up.
            if not self.agents.reserve(agent_id):
                raise Conflict("agent_unavailable", "You are away or at capacity; set yourself available first.")
            now = int(self.clock())
            self.conversations.update(chat_id, mode="agent", assignee=agent_id, assigned_at=now, remove=("offered_to",))
            return
        raise Conflict("not_offered", "This chat is not offered to you (it may have gone to another agent or timed out).")

    def release(self, chat_id: str, agent_id: str) -> None:
        token = self.conversations.take_token(chat_id, "accept", offered_to=agent_id)
        if token:
            self.workflow.fail(token, AGENT_RELEASED, "declined by the agent")
            return
        token = self.conversations.take_token(chat_id, "agent", assignee=agent_id)
        if token:
            self.workflow.succeed(token, {"event": "release"})
            return
        raise Conflict("not_assigned", "This chat is neither offered nor assigned to you.")

    def close(self, chat_id: str, agent_id: str) -> None:
        token = self.conversations.take_token(chat_id, "agent", assignee=agent_id)
        if token:
            self.workflow.succeed(token, {"event": "close"})
            return
        chat = self.conversations.get(chat_id)
        if chat and chat.get("conversation_state") != LIVE and chat.get("mode") not in (None, "closed"):
            if chat.get("assignee"):
                self.agents.release(chat["assignee"])
            self.conversations.update(chat_id, mode="closed", closed_at=int(self.clock()), remove=("assignee",))
            return
        raise Conflict("not_assigned", "Only the assigned agent can close this chat while it is being handled.")

    def transfer(self, chat_id: str, agent_id: str, to_agent: str | None, skill: str | None) -> None:
        chat = self.conversations.get(chat_id) or {}
        if chat.get("waiting_for") != "agent" or chat.get("assignee") != agent_id:
            raise Conflict("not_assigned", "Only the agent handling this chat can transfer it.")
        self.conversations.update(chat_id, transfer_to=to_agent, transfer_skill=skill)
        token = self.conversations.take_token(chat_id, "agent", assignee=agent_id)
        if not token or not self.workflow.succeed(token, {"event": "transfer"}):
            raise Conflict("not_assigned", "The chat changed hands meanwhile.")

    # --- shared ----------------------------------------------------------------------------------
    def _person_has_it(self, chat: dict) -> bool:
        """Outside a conversation, a chat an agent holds (or waits to pick up), or one the phone app
        answered moments ago, is left to them: the bot does not start over a person."""
        if chat.get("mode") in ("agent", "queued"):
            return True
        last_app = int(chat.get("last_app_activity_at") or 0)
        return chat.get("mode") == "app" and self.clock() - last_app < self.takeover_cool_down_s

    def _human_took_over(self, chat_id: str, by: str, assignee: str | None = None) -> bool:
        fields = {"takeover_by": by, "takeover_at": int(self.clock()), "mode": "agent" if by == "agent" else "app"}
        if assignee:
            fields["assignee"] = assignee
        self.conversations.update(chat_id, **fields)
        cause = f"a person answered from the {'agent inbox' if by == 'agent' else 'WhatsApp Business App'}"
        stopped = False
        bot = self.conversations.take_bot_token(chat_id)
        if bot:
            stopped |= self.workflow.fail(bot, HUMAN_TOOK_OVER, cause)
        for waiting in ("customer", "accept"):
            token = self.conversations.take_token(chat_id, waiting)
            if token:
                stopped |= self.workflow.fail(token, HUMAN_TOOK_OVER, cause)
        return stopped
