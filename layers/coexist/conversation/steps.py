"""What each task of the conversation workflow does (the `action` of the conversation function).

Every step reads and writes the chat item, so a retried step repeats the same effect. Steps never
talk over a human: before the bot sends anything it checks that it still holds the chat.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from coexist.conversation.settings import ConversationSettings
from coexist.conversation.workflow import HUMAN_TOOK_OVER, Workflow
from coexist.domain import window
from coexist.domain.records import split_chat_id
from coexist.outbound.requests import parse_send_request
from coexist.store.agents import AVAILABLE, AgentStore, pick_agent
from coexist.store.conversations import ENDED, ConversationStore
from coexist.store.items import from_item_value

SURVEY_BUTTONS = (("csat_3", "😊 Great"), ("csat_2", "😐 Okay"), ("csat_1", "🙁 Poor"))


@dataclass
class BotOutcome:
    decision: str  # reply | escalate | resolved | human | wait
    intent: str | None = None
    failures: int = 0
    session: dict | None = None
    escalation_reason: str | None = None


@dataclass
class ConversationSteps:
    conversations: ConversationStore
    agents: AgentStore
    workflow: Workflow
    outbox: object  # coexist.outbound.outbox.Outbox
    messages: object  # coexist.store.messages.MessageStore
    run_bot: Callable[[dict, list[dict]], tuple[BotOutcome, list[dict]]]  # (chat, messages) -> outcome, replies
    settings: ConversationSettings
    metrics: Callable[[str], None] = lambda name: None
    clock: Callable[[], float] = time.time
    connect: object | None = None  # coexist.conversation.connect.ConnectDesk: humans on Amazon Connect

    def run(self, event: dict):
        action = event["action"]
        handler = getattr(self, f"step_{action}", None)
        if handler is None:
            raise ValueError(f"unknown conversation action {action!r}")
        return handler(event)

    # --- bot ------------------------------------------------------------------------------------
    def step_begin(self, event: dict) -> dict:
        chat = self._chat(event)
        if chat.get("mode") in (None, "closed", "bot"):
            self.conversations.update(event["chat_id"], mode="bot")
        self.metrics("ConversationStarted")
        return self.settings.timeouts()

    def step_bot_turn(self, event: dict) -> None:
        chat_id, token = event["chat_id"], event["token"]
        self.conversations.set_bot_token(chat_id, event["conversation_id"], token)
        chat = self._chat(event)
        if chat.get("mode") != "bot" or self._cooling_down(chat):
            if self.conversations.take_bot_token(chat_id, expected=token):
                self.workflow.succeed(token, {"decision": "human"})
            return
        pending = self.conversations.take_pending(chat_id)
        if not pending:
            if self.conversations.take_bot_token(chat_id, expected=token):
                self.workflow.succeed(token, {"decision": "wait"})
            return
        messages = [from_item_value(m) for m in (self.messages.get(i) for i in pending) if m]
        outcome, replies = self.run_bot(from_item_value(chat), messages)
        for reply in replies:
            # The bot never answers over a human: stop as soon as it no longer holds the chat.
            if not self.conversations.bot_in_charge(chat_id, token):
                return
            self.outbox.send(chat_id, parse_send_request(reply), source="bot")
        fields = {"bot_failures": outcome.failures, "bot_session": outcome.session or {}}
        if outcome.intent:
            fields["bot_intent"] = outcome.intent
        self.conversations.update(chat_id, **fields)
        if self.conversations.take_bot_token(chat_id, expected=token):
            self.workflow.succeed(token, {"decision": outcome.decision, "intent": outcome.intent})

    def step_await_customer(self, event: dict) -> None:
        parked = self.conversations.park_token(event["chat_id"], event["conversation_id"], "customer", event["token"], unless_pending=True)
        if not parked:
            # Customer messages arrived while the bot was busy: go straight back to the bot.
            self.workflow.succeed(event["token"], {"pending": True})

    # --- a person took over -----------------------------------------------------------------------
    def step_takeover(self, event: dict) -> dict:
        chat = self._chat(event)
        self._release_offer(event["chat_id"], chat)
        by = chat.get("takeover_by", "app")
        self.metrics("ConversationTakenOver")
        if by == "agent":
            self.conversations.update(event["chat_id"], mode="agent", assigned_at=int(self.clock()))
            return {"by": "agent", "wait_seconds": 0}
        return {"by": "app", "wait_seconds": self._cool_down_left(chat)}

    def step_takeover_check(self, event: dict) -> dict:
        chat = self._chat(event)
        if chat.get("mode") == "agent":
            return {"still_human": True, "wait_seconds": self.settings.takeover_cool_down_s}
        left = self._cool_down_left(chat)
        if left > 0:
            return {"still_human": True, "wait_seconds": left}
        # Quiet long enough: the bot may answer new messages again (not those a person saw).
        self.conversations.take_pending(event["chat_id"])
        self.conversations.update(event["chat_id"], mode="bot")
        return {"still_human": False, "wait_seconds": 0}

    def _cool_down_left(self, chat: dict) -> int:
        last_human = max(int(chat.get("last_app_activity_at", 0)), int(chat.get("takeover_at", 0)))
        return max(0, last_human + self.settings.takeover_cool_down_s - int(self.clock()))

    def _cooling_down(self, chat: dict) -> bool:
        return self._cool_down_left(chat) > 0 and chat.get("takeover_by") is not None

    # --- routing to an agent ----------------------------------------------------------------------
    def step_queue(self, event: dict) -> dict:
        chat = self._chat(event)
        if chat.get("assignee"):
            self.agents.release(chat["assignee"])  # a transfer or release frees the current agent
        now = int(self.clock())
        skill = chat.get("transfer_skill") or self.settings.intent_skills.get(chat.get("bot_intent") or "")
        self.conversations.update(
            event["chat_id"], mode="queued", queued_at=now, remove=("assignee", "offered_to", "transfer_to", "transfer_skill")
        )
        self.metrics("ConversationQueued")
        number = chat.get("phone_number_id") or ""
        handoff = "connect" if self.connect is not None and self.connect.handles(number) else "directory"
        return {"tried": [], "attempts": 0, "agent_id": None, "exhausted": False, "skill": skill,
                "preferred": chat.get("transfer_to"), "handoff": handoff}

    def step_assign(self, event: dict) -> dict:
        routing = dict(event["routing"])
        tried = list(routing.get("tried", []))
        if routing.get("agent_id"):
            # The previous offer timed out or was declined: free that agent and try someone else.
            self.agents.release(routing["agent_id"])
            tried.append(routing["agent_id"])
            self.conversations.update(event["chat_id"], remove=("offered_to",))
        attempts = int(routing.get("attempts", 0))
        if attempts >= self.settings.max_assign_attempts:
            return {**routing, "tried": tried, "agent_id": None, "exhausted": True}
        candidates = pick_agent(self.agents.by_availability(AVAILABLE), routing.get("skill"), set(tried))
        preferred = routing.get("preferred")
        candidates.sort(key=lambda a: a["agent_id"] != preferred)
        for agent in candidates:
            if self.agents.reserve(agent["agent_id"]):
                return {**routing, "tried": tried, "attempts": attempts + 1, "agent_id": agent["agent_id"], "exhausted": False, "preferred": None}
        return {**routing, "tried": tried, "attempts": attempts + 1, "agent_id": None,
                "exhausted": attempts + 1 >= self.settings.max_assign_attempts}

    def step_await_accept(self, event: dict) -> None:
        self.conversations.park_token(event["chat_id"], event["conversation_id"], "accept", event["token"], offered_to=event["agent_id"])

    def step_accepted(self, event: dict) -> dict:
        now = int(self.clock())
        self.conversations.update(event["chat_id"], mode="agent", assignee=event["agent_id"], assigned_at=now, remove=("offered_to",))
        self.metrics("ConversationAssigned")
        return {"agent_id": event["agent_id"]}

    def step_unassigned(self, event: dict) -> dict:
        """Nobody accepted: tell the customer, leave the chat queued, raise the alert."""
        chat = from_item_value(self._chat(event))
        request = self._unassigned_message(chat)
        if request:
            self.outbox.send(event["chat_id"], parse_send_request(request), source="bot")
        self.conversations.update(event["chat_id"], mode="queued", unassigned_at=int(self.clock()), conversation_state=ENDED, remove=("offered_to",))
        self.metrics("ConversationUnassigned")
        return {"notified": request is not None}

    def _unassigned_message(self, chat: dict) -> dict | None:
        if window.is_open(chat.get("last_customer_message_at"), int(self.clock())):
            return {"type": "text", "text": self.settings.unassigned_text}
        if self.settings.unassigned_template:
            name, _, language = self.settings.unassigned_template.partition(":")
            return {"type": "template", "template": {"name": name, "language": language or "en_US"}}
        return None  # window closed and no template configured: the alert is all we can do

    # --- humans on Amazon Connect (coexist.conversation.connect) --------------------------------------
    def step_connect_start(self, event: dict) -> dict:
        return self.connect.hand_over(event["chat_id"], event["conversation_id"])

    def step_await_connect(self, event: dict) -> None:
        self.connect.await_end(event["chat_id"], event["conversation_id"], event["token"])

    # --- an agent handles the chat -------------------------------------------------------------------
    def step_agent_plan(self, event: dict) -> dict:
        """When to look at the chat again: when it would go idle, or when the window needs a warning."""
        chat = from_item_value(self._chat(event))
        now = int(self.clock())
        last = max(int(chat.get("last_message_at") or 0), int(chat.get("assigned_at") or 0))
        wake = last + self.settings.agent_idle_s
        expires = window.window_expires_at(chat.get("last_customer_message_at"))
        if expires and not chat.get("window_warning_at") and expires > now:
            wake = min(wake, expires - self.settings.window_warning_s)
        return {"seconds": max(1, wake - now)}

    def step_await_agent(self, event: dict) -> None:
        self.conversations.park_token(event["chat_id"], event["conversation_id"], "agent", event["token"])

    def step_agent_check(self, event: dict) -> dict:
        chat = from_item_value(self._chat(event))
        now = int(self.clock())
        last = max(int(chat.get("last_message_at") or 0), int(chat.get("assigned_at") or 0))
        if now - last >= self.settings.agent_idle_s:
            return {"idle": True}
        expires = window.window_expires_at(chat.get("last_customer_message_at"))
        if expires and expires - now <= self.settings.window_warning_s and not chat.get("window_warning_at"):
            self.conversations.update(event["chat_id"], window_warning_at=now)
            self.metrics("WindowClosingWarning")
        return {"idle": False}

    # --- the end --------------------------------------------------------------------------------------
    def step_close(self, event: dict) -> dict:
        chat = from_item_value(self._chat(event))
        if chat.get("assignee"):
            self.agents.release(chat["assignee"])
        if self.connect is not None:
            self.connect.leave(event["chat_id"], chat)
        now = int(self.clock())
        self.conversations.update(event["chat_id"], mode="closed", closed_at=now, conversation_state=ENDED, remove=("offered_to",))
        self.metrics("ConversationClosed")
        survey = self.settings.survey and window.is_open(chat.get("last_customer_message_at"), now)
        return {"survey": survey}

    def step_survey(self, event: dict) -> None:
        request = {"type": "interactive", "body": self.settings.survey_question,
                   "buttons": [{"id": i, "title": t} for i, t in SURVEY_BUTTONS]}
        self.outbox.send(event["chat_id"], parse_send_request(request), source="bot")
        self.conversations.park_token(event["chat_id"], event["conversation_id"], "survey", event["token"])

    def step_record_score(self, event: dict) -> dict:
        reply_id = (event.get("answer") or {}).get("reply_id") or ""
        score = int(reply_id.removeprefix("csat_")) if reply_id.startswith("csat_") and reply_id[5:].isdigit() else None
        if score is not None:
            self.conversations.update(event["chat_id"], satisfaction_score=score, satisfaction_at=int(self.clock()))
            self.metrics("SatisfactionRecorded")
        return {"score": score}

    def step_end(self, event: dict) -> dict:
        self.conversations.update(event["chat_id"], mode="closed", closed_at=int(self.clock()), conversation_state=ENDED)
        return {"ended": True}

    # --- helpers ----------------------------------------------------------------------------------------
    def _chat(self, event: dict) -> dict:
        chat = self.conversations.get(event["chat_id"])
        if chat is None or split_chat_id(event["chat_id"]) is None:
            raise ValueError("the conversation's chat does not exist")
        return chat

    def _release_offer(self, chat_id: str, chat: dict) -> None:
        if chat.get("offered_to") and chat.get("mode") != "agent":
            self.agents.release(chat["offered_to"])
            self.conversations.update(chat_id, remove=("offered_to",))


__all__ = ["ConversationSteps", "BotOutcome", "HUMAN_TOOK_OVER"]
