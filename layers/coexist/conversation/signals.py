"""Waking the conversation workflow: what ingest and the agent API do with the tokens it parks."""

from __future__ import annotations

import time
from dataclasses import dataclass

from coexist.conversation import survey
from coexist.conversation.workflow import AGENT_RELEASED, HUMAN_TOOK_OVER, SUPERSEDED_BY_MERGE, BotLoop, Workflow, execution_name
from coexist.domain import bot_phase
from coexist.domain.chat import Chat, ChatMode, WaitingFor
from coexist.domain.records import MessageRecord
from coexist.store.agents import AgentStore
from coexist.store.chats import ChatRepository, CustomerWait, Superseded


class Conflict(Exception):
    """The chat is not in a state that allows this action (HTTP 409)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Signals:
    chats: ChatRepository
    workflow: Workflow
    agents: AgentStore
    takeover_cool_down_s: int = 1800
    clock: object = time.time
    connect: object | None = None  # coexist.conversation.connect.ConnectDesk: humans on Amazon Connect
    bot_loop: BotLoop | None = None  # begins a conversation's bot phase and runs its turns

    # --- from ingest ---------------------------------------------------------------------------
    def customer_wrote(self, chat_id: str, message_id: str, reply_id: str | None, message: MessageRecord | None = None) -> str:
        """A new customer message. Returns what happened (for metrics and tests). `message`: the
        message itself, whose copy waits for the bot on the chat (its turn then reads nothing)."""
        carried = None if message is None else {
            "type": message.type, "text": message.text, "timestamp": message.timestamp, "reply": reply_id}
        chat = self.chats.get(chat_id)
        if chat is None:
            return "no_chat"
        if chat.waiting_for == WaitingFor.SURVEY and self._answers_survey(chat, message_id, reply_id, message):
            if survey.score_of(reply_id) is not None:
                return "survey_answer"
            # Anything but a tapped score ends the survey unanswered and is a message like any other:
            # a customer who writes again after the close is answered, never left unheard.
        if not chat.live:
            if self._person_has_it(chat):
                return "human_handles"
            name = execution_name(chat_id, message_id)
            # The conversation claimed and its first message queued for the bot, in one write; its
            # bot phase begins outside the workflow (no execution until it hands the customer on).
            if self.chats.claim(chat_id, name, message_id, carried):
                self.bot_loop.begin(chat_id, name)
                return "started"
            self.chats.add_pending(chat_id, message_id, carried)  # another message claimed it meanwhile
            return "queued_for_bot"
        if chat.conversation_id == execution_name(chat_id, message_id):
            return self._begin_again(chat, message_id)
        if self.connect is not None and self.connect.is_active(chat):
            return self.connect.relay(chat_id, message_id, chat)  # the Connect agent sees it too
        if chat.mode == ChatMode.CLOSED:
            # Claimed by an earlier message whose first turn has not begun the conversation yet (it
            # moves a chat an earlier conversation closed to `bot`): this message waits for that turn.
            self.chats.add_pending(chat_id, message_id, carried)
            return "queued_for_bot"
        if chat.mode != ChatMode.BOT:
            return "human_handles"  # an agent or the phone app has it; the inbox shows the message
        # The bot waits for the customer (the common case): queued and its token taken in one write.
        wait = self.chats.queue_taking_customer_wait(chat_id, message_id, carried) if chat.waiting_for == WaitingFor.CUSTOMER else None
        if wait is None:
            self.chats.add_pending(chat_id, message_id, carried)
        if chat.waiting_for == WaitingFor.CUSTOMER:
            wait = wait or self.chats.take_customer_wait(chat_id)
            if wait and wait.heartbeat:
                self._next_bot_turn(chat, wait)
                return "woke_bot"
            if wait:  # an execution of an earlier definition: the token's success is the next turn
                self.workflow.succeed(wait.token, {"message_id": message_id})
                return "woke_bot"
        return "queued_for_bot"

    def _begin_again(self, chat: Chat, message_id: str) -> str:
        """This message claimed the chat before and its record is being retried: its first turn may
        never have started (the invocation failed). It is started again only while the message still
        waits on the chat and no turn holds the token; once a turn took it, the conversation is under way."""
        if message_id in chat.pending_messages and chat.bot_token is None and chat.workflow_token is None:
            self.bot_loop.begin(chat.chat_id, chat.conversation_id)
            return "started"
        return "queued_for_bot"

    def _next_bot_turn(self, chat: Chat, wait: CustomerWait) -> None:
        try:
            self.bot_loop.next_turn(chat.chat_id, chat.conversation_id, wait.token, wait.heartbeat)
        except Exception:
            # The token goes back on the chat for the record's retry, which finds it there again.
            self.chats.park_customer_wait(chat.chat_id, chat.conversation_id, wait)
            raise

    def _answers_survey(self, chat: Chat, message_id: str, reply_id: str | None, message: MessageRecord | None) -> bool:
        """The customer's first message after the survey, sent before its deadline, ends its wait (a
        tapped button with its score; any other message without one, and then goes on as a message).
        Past the deadline, or when nothing waits any more, it is a message like any other: it may
        start a new conversation."""
        score = survey.score_of(reply_id)
        if chat.workflow_token is None:
            return self.chats.answer_survey(chat.chat_id, score, sent_at=message.timestamp if message else None)
        # An execution of an earlier definition waits for the answer in its own state.
        token = self.chats.take_token(chat.chat_id, WaitingFor.SURVEY)
        if not token or not self.workflow.succeed(token, {"message_id": message_id, "score": score}):
            return False  # its wait timed out: the survey is over
        if score is not None:
            self.chats.record_score(chat.chat_id, score)
        return True

    def business_app_replied(self, chat_id: str) -> bool:
        """An echo: someone answered from the phone. The bot stops mid-step and stays quiet."""
        chat = self.chats.get(chat_id)
        if chat is not None and chat.live:
            self.chats.note_first_human_reply(chat_id)
        return self._human_took_over(chat_id, chat)

    def end_superseded(self, superseded: Superseded) -> None:
        """Two chats of one person were merged and the other chat's conversation kept: this one's
        workflow stops (its parked waits went with the merge, so nothing would ever wake it), its
        Amazon Connect contact ends, and the agents it held are freed, once (whoever takes the record
        from the chat frees them)."""
        if superseded.conversation_id:
            self.workflow.stop(superseded.conversation_id, SUPERSEDED_BY_MERGE,
                               "the customer's chats were merged; the other chat's conversation goes on")
        if superseded.connect_contact and self.connect is not None:
            self.connect.end_contact(*superseded.connect_contact)
        if self.chats.take_superseded(superseded.chat_id):
            for agent in superseded.agents:
                self.agents.release(agent)

    # --- from the agent API ----------------------------------------------------------------------
    def agent_replied(self, chat_id: str, agent_id: str) -> bool:
        chat = self.chats.get(chat_id)
        if chat is None:
            return False
        if chat.first_human_reply_at is None:  # the first-response time is set once
            self.chats.note_first_human_reply(chat_id)
        # A conversation claimed and not begun yet (its first turn is on its way) begins here, in the
        # agent's hands, and the turn finds it taken.
        if chat.mode in (ChatMode.BOT, ChatMode.APP) or (chat.live and chat.mode == ChatMode.CLOSED and self.chats.begin(chat_id)):
            return self._human_took_over(chat_id, chat, by_agent=agent_id)
        return False

    def accept(self, chat_id: str, agent_id: str) -> None:
        token = self.chats.take_token(chat_id, WaitingFor.ACCEPT, offered_to=agent_id)
        if token and self.workflow.succeed(token, {"agent_id": agent_id}):
            return
        chat = self.chats.get(chat_id)
        if chat is None:
            raise Conflict("not_found", "no such chat")
        if chat.mode == ChatMode.QUEUED and not chat.live:
            # Routing gave up earlier (nobody accepted): an agent can still pick the chat up.
            if not self.agents.reserve(agent_id):
                raise Conflict("agent_unavailable", "You are away or at capacity; set yourself available first.")
            if self.chats.pick_up(chat_id, agent_id):
                return
            self.agents.release(agent_id)  # someone else moved the chat meanwhile
        raise Conflict("not_offered", "This chat is not offered to you (it may have gone to another agent or timed out).")

    def release(self, chat_id: str, agent_id: str) -> None:
        token = self.chats.take_token(chat_id, WaitingFor.ACCEPT, offered_to=agent_id)
        if token:
            self.workflow.fail(token, AGENT_RELEASED, "declined by the agent")
            return
        token = self.chats.take_token(chat_id, WaitingFor.AGENT, assignee=agent_id)
        if token:
            self.workflow.succeed(token, {"event": "release"})
            return
        raise Conflict("not_assigned", "This chat is neither offered nor assigned to you.")

    def close(self, chat_id: str, agent_id: str) -> None:
        token = self.chats.take_token(chat_id, WaitingFor.AGENT, assignee=agent_id)
        if token:
            self.workflow.succeed(token, {"event": "close"})
            return
        chat = self.chats.get(chat_id)
        if chat and not chat.live and self.chats.close(chat_id):
            if chat.assignee:
                self.agents.release(chat.assignee)
            return
        raise Conflict("not_assigned", "Only the assigned agent can close this chat while it is being handled.")

    def transfer(self, chat_id: str, agent_id: str, to_agent: str | None, skill: str | None) -> None:
        chat = self.chats.get(chat_id)
        if chat is None or chat.waiting_for != WaitingFor.AGENT or chat.assignee != agent_id:
            raise Conflict("not_assigned", "Only the agent handling this chat can transfer it.")
        self.chats.request_transfer(chat_id, to_agent, skill)
        token = self.chats.take_token(chat_id, WaitingFor.AGENT, assignee=agent_id)
        if not token or not self.workflow.succeed(token, {"event": "transfer"}):
            raise Conflict("not_assigned", "The chat changed hands meanwhile.")

    # --- shared ----------------------------------------------------------------------------------
    def _person_has_it(self, chat: Chat) -> bool:
        """Outside a conversation, a chat an agent holds (or waits to pick up), or one the phone app
        answered moments ago, is left to them: the bot does not start over a person."""
        if chat.mode in (ChatMode.AGENT, ChatMode.QUEUED):
            return True
        return chat.mode == ChatMode.APP and self.clock() - (chat.last_app_activity_at or 0) < self.takeover_cool_down_s

    def _human_took_over(self, chat_id: str, before: Chat | None, by_agent: str | None = None) -> bool:
        """A person answered: the chat is theirs, and the token the conversation's bot held or
        parked fails, which starts (or moves) its execution at the takeover. `before`: the chat as
        read before the takeover."""
        moved = self.chats.take_over(chat_id, by_agent=by_agent)
        cause = f"a person answered from the {'agent inbox' if by_agent else 'WhatsApp Business App'}"
        stopped = taken = False
        bot = self.chats.take_bot_token(chat_id)
        if bot:
            taken, stopped = True, self.workflow.fail(bot, HUMAN_TOOK_OVER, cause) or stopped
        for waiting in (WaitingFor.CUSTOMER, WaitingFor.ACCEPT):
            token = self.chats.take_token(chat_id, waiting)
            if token:
                taken, stopped = True, self.workflow.fail(token, HUMAN_TOOK_OVER, cause) or stopped
        if moved and not taken and before is not None and before.live and before.takeover_by is None:
            # The conversation's first takeover, and no token to fail: its bot's turn had the token
            # in flight, invoked and not started yet (it will find the chat taken), or lost. Either
            # way the person has the conversation now: its execution starts at the takeover (the
            # turn's own start, by the same name, is then refused; so is this one where an
            # execution runs already).
            stopped = self.workflow.fail(bot_phase.token(chat_id, before.conversation_id), HUMAN_TOOK_OVER, cause)
        return stopped
