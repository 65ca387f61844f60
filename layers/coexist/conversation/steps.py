"""What each task of the conversation workflow does (the `action` of the conversation function).

Every step reads and writes the chat item, so a retried step repeats the same effect. Steps never
talk over a human: each of the bot's replies is stored on the condition that its turn still holds
the chat (`BotHold`), in one transaction with the chat's write; a person who took over refuses it.

The execution's input names the chat it started on; when that chat is merged into another and the
merge carries the conversation there (docs/ARCHITECTURE.md rule 15), each step acts on the chat
that holds the conversation now (`ChatRepository.holding`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from coexist.conversation import survey
from coexist.conversation.settings import ConversationSettings
from coexist.conversation.workflow import BOT_ESCALATED, BOT_RESOLVED, BOT_TURN_FAILED, HUMAN_TOOK_OVER, BotLoop, Workflow
from coexist.domain import window
from coexist.domain.chat import Chat, ChatMode, ConversationState, Heartbeats, Takeover, WaitingFor
from coexist.domain.records import Source
from coexist.number_config import HumansProvider
from coexist.outbound.outbox import ChatNotFound, HoldLost, NotQueued, Refused
from coexist.outbound.requests import parse_send_request
from coexist.store import task_tokens
from coexist.store.agents import AVAILABLE, AgentStore, pick_agent
from coexist.store.chats import BotHold, ChatRepository, DuplicateTurn, WaitingMessage
from coexist.store.items import from_item_value

# Steps that begin with a write conditioned on their conversation: they look for a merge only when
# that write is refused, so a bot turn costs no extra read (benchmarks/workflow.py counts it).
FOLLOW_ON_REFUSAL = frozenset({"converse", "bot_turn", "await_customer"})
_HELD = "_held_chat"  # the chat `_follow` read, for the step's first `_chat`
# The previous definition's choice after a bot turn, by how the turn leaves the loop now.
_PREVIOUS_DECISIONS = {HUMAN_TOOK_OVER: "human", BOT_ESCALATED: "escalate", BOT_RESOLVED: "resolved"}


@dataclass
class BotOutcome:
    decision: str  # reply | escalate | resolved
    intent: str | None = None
    failures: int = 0
    session: dict | None = None
    escalation_reason: str | None = None


@dataclass
class ConversationSteps:
    chats: ChatRepository
    agents: AgentStore
    workflow: Workflow
    outbox: object  # coexist.outbound.outbox.Outbox
    messages: object  # coexist.store.messages.MessageStore
    run_bot: Callable[[Chat, list[dict]], tuple[BotOutcome, list[dict]]]  # (chat, messages) -> outcome, replies
    settings: ConversationSettings
    metrics: Callable[[str], None] = lambda name: None
    clock: Callable[[], float] = time.time
    connect: object | None = None  # coexist.conversation.connect.ConnectDesk: humans on Amazon Connect
    bot_loop: BotLoop | None = None  # the next bot turn, when its token takes heartbeats

    def run(self, event: dict):
        action = event["action"]
        handler = getattr(self, f"step_{action}", None)
        if handler is None:
            raise ValueError(f"unknown conversation action {action!r}")
        event = dict(event)
        if action not in FOLLOW_ON_REFUSAL:
            self._follow(event)
        if event.get("direct"):
            return self._run_direct(handler, event)
        return handler(event)

    def _run_direct(self, handler: Callable[[dict], object], event: dict) -> None:
        """A turn BotLoop invoked: nobody waits for its result, so its failure is told to the
        workflow as the failure of its own task would be: the token fails, and the definition hands
        the customer to a person. (Raising instead would have Lambda run the turn again, which could
        answer while the escalation runs.) Only a failure to tell the workflow is raised."""
        try:
            handler(event)
        except Exception as error:
            self.metrics("BotTurnFailed")
            self.workflow.fail(event["token"], BOT_TURN_FAILED, f"the bot's turn failed: {type(error).__name__}")

    # --- bot ------------------------------------------------------------------------------------
    def step_converse(self, event: dict) -> None:
        """A bot turn: the first begins the conversation, the bot answers the messages that wait for
        it, then the token waits for the customer's next message, parked on the chat. The token is
        the bot phase's own (coexist.domain.bot_phase) or, after a takeover's cool-down or in an
        execution an upgrade found running, a `BotTurn` task's. With a token timed by heartbeats that
        message runs the next turn on the same token (BotLoop); with the definition before those,
        its wake is the next `BotTurn` state. The turn leaves the loop by an error that `Workflow`
        routes (a person holds the chat, the bot escalated), or it resolves."""
        token = event["token"]
        turn = event.get("turn") if event.get("direct") else None
        try:
            started = self.chats.start_bot_turn(event["chat_id"], event["conversation_id"], token, turn)
            if started is None and self._moved(event):
                started = self.chats.start_bot_turn(event["chat_id"], event["conversation_id"], token, turn)
        except DuplicateTurn:
            # A second delivery of a turn (a retried begin, Lambda's duplicate event): the turn it
            # repeats has the customer's messages, so this one leaves them to it.
            self.metrics("BotTurnDuplicate")
            return
        if started is None:
            if self.chats.get(event["chat_id"]) is None:
                raise ValueError("the conversation's chat does not exist")
            return  # a merge superseded this conversation: its execution is being stopped
        chat_id = event["chat_id"]
        chat, pending = started
        if chat.conversation_state == ConversationState.ENDED:
            # The bot closed this conversation in a turn that did not live to end its task (Lambda
            # runs it again): end the task now, rather than begin the conversation anew.
            self.chats.take_bot_token(chat_id, expected=token)
            self.workflow.succeed(token, {"resolved": True})
            return
        # Refused when a person holds the chat: the check below then sees it.
        began = chat.mode == ChatMode.CLOSED and self.chats.begin(chat_id)
        if began:
            self.metrics("ConversationStarted")
        if not (began or chat.mode == ChatMode.BOT) or self._cooling_down(chat):
            # The messages a person saw are theirs (the cool-down's end does not hand them to the bot).
            self._leave_loop(event, HUMAN_TOOK_OVER, "a person holds the chat")
            return
        if event.get("direct") and task_tokens.names(chat.bot_token, token):
            # This turn ran before and never finished (Lambda retries an invocation that timed out
            # or crashed): that attempt took the messages waiting for the bot, so this one would find
            # none and wait in silence. A person answers them instead, as when a workflow task fails.
            self.metrics("BotTurnRetried")
            self._leave_loop(event, BOT_TURN_FAILED, "a bot turn did not finish; a person answers its messages")
            return
        if not pending:
            self._await_customer(event, None)
            return
        outcome, replies = self.run_bot(chat, self._waiting_messages(pending))
        # When the loop goes on (an answer, not a way out of it), the last reply's write ends the turn.
        ends_turn = outcome.decision == "reply" and event["action"] == "converse" and bool(replies)
        turn = {"failures": outcome.failures, "session": outcome.session or {}, "intent": outcome.intent}
        for i, reply in enumerate(replies):
            hold = BotHold(event["conversation_id"], token, turn if ends_turn and i == len(replies) - 1 else None,
                           heartbeat=_heartbeats(event))
            try:
                # The bot never answers over a human: each reply is stored only while its turn holds the chat.
                accepted = self.outbox.send(chat_id, parse_send_request(reply), source=Source.BOT, chat_item=chat, hold=hold)
            except HoldLost:
                return
        if ends_turn:
            if not accepted.parked:
                self._next_turn_now(event)  # customer messages came meanwhile (the turn is recorded)
            return
        if outcome.decision == "escalate":
            self._leave_loop(event, BOT_ESCALATED, outcome.escalation_reason or "the bot escalated", turn)
        elif outcome.decision == "resolved":
            if _heartbeats(event) == Heartbeats.SUCCESS_ENDS:
                self._close_in_turn(event, chat, turn)
            else:  # an earlier definition closes in a state of its own
                self._leave_loop(event, BOT_RESOLVED, "the bot resolved the conversation", turn)
        else:
            self._await_customer(event, outcome)

    def step_bot_idle(self, event: dict) -> None:
        """A bot phase's idle timer fired (coexist.conversation.workflow.IdleTimers): the customer has
        said nothing for the idle time while the bot waited, so the conversation ends quietly, with
        no survey, as a heartbeat's timeout ended it before. A firing that finds a turn still running,
        or the customer's wait parked again, times the phase again (the schedule is gone once it
        fired). One that finds the token nowhere moves on what its lost turn left (`_lost_turn`)."""
        token = event["token"]
        if self.chats.end_quiet_bot_phase(event["chat_id"], token, int(self.clock()) - self.settings.customer_idle_s):
            self.metrics("ConversationEndedIdle")
            return
        chat = event.pop(_HELD, None) or self.chats.get(event["chat_id"])
        if chat is None or not chat.live or chat.conversation_id != event["conversation_id"]:
            return  # the conversation ended or moved on: nothing of it to time
        if not (task_tokens.names(chat.bot_token, token) or task_tokens.names(chat.workflow_token, token)):
            self._lost_turn(chat, token)
        elif chat.mode == ChatMode.BOT:
            self.workflow.heartbeat(token)  # otherwise whoever holds the token hands the conversation on

    def _lost_turn(self, chat: Chat, token: str) -> None:
        """The bot phase's conversation is live, yet no turn holds its token and it does not wait for
        the customer: whoever took it invoked a turn that has not run. Past the idle time it never
        will have (Lambda failed it three times, or it aged out, to the turn dead-letter queue), and
        nothing else would move the conversation on. The token is held where that turn would find
        it (it leaves, should it come after all), and the conversation goes where the turn would have
        sent it: to the person who took the chat over meanwhile, else, with messages waiting, to a
        person, as when a turn fails. (A lost first turn did not begin the conversation on a chat an
        earlier one left closed: it begins here.)"""
        taken_over_in = {ChatMode.AGENT, ChatMode.APP}  # the bot phase's takeovers (not Connect's, which follows it)
        if chat.mode not in taken_over_in and not (chat.pending_messages and chat.mode in (ChatMode.BOT, ChatMode.CLOSED)):
            return
        held = self.chats.hold_lost_turn(chat.chat_id, chat.conversation_id, token)
        if held is None:
            return  # the turn started after all (whoever woke it timed the phase again), or a task waits
        if held.mode == ChatMode.CLOSED:
            self.chats.begin(chat.chat_id)
        taken_over = held.mode in taken_over_in
        self.metrics("BotTurnLost")
        self.workflow.fail(token, HUMAN_TOOK_OVER if taken_over else BOT_TURN_FAILED,
                           "a person took the chat over while a bot turn was lost" if taken_over
                           else "a bot turn never ran; a person answers its messages")

    def _await_customer(self, event: dict, outcome: BotOutcome | None) -> None:
        """The turn's token waits for the customer, the turn's outcome recorded in the same write."""
        token = event["token"]
        turn = {} if outcome is None else {"failures": outcome.failures, "session": outcome.session or {}, "intent": outcome.intent}
        if event["action"] == "bot_turn":  # the previous definition: its own state waits for the customer
            if turn:
                self.chats.record_bot_turn(event["chat_id"], turn["failures"], turn["session"], turn["intent"])
            self._leave_loop(event, None, "reply" if turn else "wait")
            return
        for attempt in range(2):
            if self.chats.await_customer(event["chat_id"], event["conversation_id"], token, heartbeat=_heartbeats(event), **turn):
                return
            if turn:
                self.chats.record_bot_turn(event["chat_id"], turn["failures"], turn["session"], turn["intent"])
                turn = {}
            if self.chats.take_bot_token(event["chat_id"], expected=token):
                # Customer messages arrived while the bot was busy: straight to the next turn.
                self._next_turn(event)
                return
            if attempt or not self._moved(event):
                return  # a person took the chat, and the token with it

    def _waiting_messages(self, waiting: list[WaitingMessage]) -> list[dict]:
        """What the bot reads of the messages waiting for it: the copy the chat carried, else the
        message itself (a long text, or one queued before copies were kept)."""
        read = (self.messages.get(m.id) for m in waiting if m.carried is None)
        return [m.carried for m in waiting if m.carried is not None] + [from_item_value(m) for m in read if m]

    def _next_turn_now(self, event: dict) -> None:
        """Customer messages came while the bot answered: straight to the next turn, if the token is
        still the bot's."""
        if self.chats.take_bot_token(event["chat_id"], expected=event["token"]):
            self._next_turn(event)

    def _next_turn(self, event: dict) -> None:
        """The token taken back from the turn: the next turn runs on it. A token timed by heartbeats
        stays in its task (BotLoop); an earlier definition's starts its next state with its success."""
        if event.get("heartbeat"):
            self.bot_loop.next_turn(event["chat_id"], event["conversation_id"], event["token"], _heartbeats(event))
        else:
            self.workflow.succeed(event["token"], {"pending": True})

    def _leave_loop(self, event: dict, error: str | None, cause: str, turn: dict | None = None) -> None:
        """The turn's token, if the bot still holds it, fails with `error`: the definition's catch
        takes the conversation on from there. `turn`: its outcome, recorded as the token is taken."""
        if not self._take_turns_token(event, turn):
            return  # a person took the chat, and the token with it
        token = event["token"]
        if event["action"] == "bot_turn":  # the previous definition chooses by the turn's decision
            self.workflow.succeed(token, {"decision": _PREVIOUS_DECISIONS.get(error, cause)})
        else:
            self.workflow.fail(token, error, cause)

    def _take_turns_token(self, event: dict, turn: dict | None) -> bool:
        """The bot's token taken from the chat (with the turn's outcome, when it ran), so that the
        turn alone decides where the conversation goes. False: a person has it."""
        if turn is None:
            return self.chats.take_bot_token(event["chat_id"], expected=event["token"]) is not None
        return self.chats.end_bot_turn(event["chat_id"], event["token"], turn["failures"], turn["session"], turn["intent"])

    def _close_in_turn(self, event: dict, chat: Chat, turn: dict) -> None:
        """The bot resolved: the turn closes the conversation and asks the survey itself, then ends
        the bot phase's task with its success, which ends the execution (no state of its own)."""
        if not self._take_turns_token(event, turn):
            return  # a person took the chat, and the token with it
        self._finish(event, chat)
        self.workflow.succeed(event["token"], {"resolved": True})

    # --- a person took over -----------------------------------------------------------------------
    def step_takeover(self, event: dict) -> dict:
        chat = self._chat(event)
        self._release_offer(event["chat_id"], chat)
        self.metrics("ConversationTakenOver")
        if chat.takeover_by == Takeover.AGENT:
            self.chats.confirm_agent_takeover(event["chat_id"])
            return {"by": Takeover.AGENT.value, "wait_seconds": 0}
        return {"by": Takeover.APP.value, "wait_seconds": self._cool_down_left(chat)}

    def step_takeover_check(self, event: dict) -> dict:
        chat = self._chat(event)
        if chat.mode == ChatMode.AGENT:
            return {"still_human": True, "wait_seconds": self.settings.takeover_cool_down_s}
        left = self._cool_down_left(chat)
        if left > 0:
            return {"still_human": True, "wait_seconds": left}
        # Quiet long enough: the bot may answer new messages again (not those a person saw).
        self.chats.take_pending(event["chat_id"])
        # Refused only if the chat moved to someone else meanwhile; the next bot turn then sees who has it.
        self.chats.resume_bot(event["chat_id"])
        return {"still_human": False, "wait_seconds": 0}

    def _cool_down_left(self, chat: Chat) -> int:
        return max(0, chat.last_human_at() + self.settings.takeover_cool_down_s - int(self.clock()))

    def _cooling_down(self, chat: Chat) -> bool:
        return self._cool_down_left(chat) > 0 and chat.takeover_by is not None

    # --- routing to an agent ----------------------------------------------------------------------
    def step_route(self, event: dict) -> dict:
        """Queue the chat and route it at once: to Amazon Connect when its number's humans work
        there, else the first round of the built-in directory (the workflow's `Routed` choice
        reads the outcome, so no state of its own decides the handoff)."""
        routing = self.step_queue(event)
        if routing["taken_over"]:
            return routing  # the `Routed` choice takes it to the takeover
        if routing["handoff"] == HumansProvider.CONNECT.value and self._hand_to_connect(event):
            return {**routing, "handed": True}
        return self.step_assign({**event, "routing": {**routing, "handoff": HumansProvider.DIRECTORY.value, "handed": False}})

    def step_queue(self, event: dict) -> dict:
        """The chat waits for a person: the routing to start from, and who its number's humans are."""
        chat = self._chat(event)
        if chat.assignee:
            self.agents.release(chat.assignee)  # a transfer or release frees the current agent
        skill = chat.transfer_skill or self.settings.intent_skills.get(chat.bot_intent or "")
        to_connect = self.connect is not None and self.connect.handles(chat.phone_number_id)
        handoff = (HumansProvider.CONNECT if to_connect else HumansProvider.DIRECTORY).value
        routing = {"tried": [], "attempts": 0, "agent_id": None, "exhausted": False, "skill": skill,
                   "preferred": chat.transfer_to, "handoff": handoff, "taken_over": False}
        if not self.chats.queue(event["chat_id"]) and self._taken_over(event):
            # Someone answered, from the phone or the inbox, after the bot escalated (the bot phase
            # had ended, so the answer found no token to fail): the person keeps the chat, nobody is
            # routed to it.
            return {**routing, "taken_over": True}
        self.metrics("ConversationQueued")
        return routing

    def _taken_over(self, event: dict) -> bool:
        """A person's takeover the workflow has not confirmed yet holds the chat."""
        chat = self.chats.get(event["chat_id"])
        return chat is not None and (chat.mode == ChatMode.APP or (
            chat.mode == ChatMode.AGENT and chat.takeover_by == Takeover.AGENT and chat.assigned_at is None))

    def _hand_to_connect(self, event: dict) -> bool:
        """Start the Amazon Connect contact. When Connect cannot take the chat, the built-in directory
        routes it: nobody is left unattended."""
        try:
            return bool(self.connect.hand_over(event["chat_id"], event["conversation_id"]).get("handed"))
        except Exception:  # noqa: BLE001  (whatever failed, the directory still routes the customer)
            self.metrics("ConnectHandoffFailed")
            return False

    def step_assign(self, event: dict) -> dict:
        routing = dict(event["routing"])
        tried = list(routing.get("tried", []))
        if routing.get("agent_id"):
            # The previous offer timed out or was declined: free that agent and try someone else.
            self.agents.release(routing["agent_id"])
            tried.append(routing["agent_id"])
            self.chats.withdraw_offer(event["chat_id"])
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
        self.chats.offer(event["chat_id"], event["conversation_id"], event["agent_id"], event["token"])

    def step_accepted(self, event: dict) -> dict:
        """The offered agent accepted; the result is also when to look at the chat next (agent_plan)."""
        self.chats.hand_to_agent(event["chat_id"], event["agent_id"])
        self.metrics("ConversationAssigned")
        return {"agent_id": event["agent_id"], **self.step_agent_plan({"chat_id": event["chat_id"]})}

    def step_unassigned(self, event: dict) -> dict:
        """Nobody accepted: tell the customer, leave the chat queued, raise the alert."""
        chat = self._chat(event)
        request = self._unassigned_message(chat)
        if request:
            self.outbox.send(event["chat_id"], parse_send_request(request), source=Source.BOT)
        self.chats.give_up(event["chat_id"])
        self.metrics("ConversationUnassigned")
        return {"notified": request is not None}

    def _unassigned_message(self, chat: Chat) -> dict | None:
        if window.is_open(chat.last_customer_message_at, int(self.clock())):
            return {"type": "text", "text": self.settings.unassigned_text}
        if self.settings.unassigned_template:
            name, _, language = self.settings.unassigned_template.partition(":")
            return {"type": "template", "template": {"name": name, "language": language or "en_US"}}
        return None  # window closed and no template configured: the alert is all we can do

    # --- humans on Amazon Connect (coexist.conversation.connect) --------------------------------------
    def step_await_connect(self, event: dict) -> None:
        self.connect.await_end(event["chat_id"], event["conversation_id"], event["token"])

    # --- an agent handles the chat -------------------------------------------------------------------
    def step_agent_plan(self, event: dict) -> dict:
        """When to look at the chat again: when it would go idle, or when the window needs a warning."""
        chat = self._chat(event)
        now = int(self.clock())
        last = max(chat.last_message_at or 0, chat.assigned_at or 0)
        wake = last + self.settings.agent_idle_s
        warn_at = window.next_warning_at(chat.last_customer_message_at, chat.window_warning_at, self.settings.window_warning_s)
        if warn_at is not None and warn_at + self.settings.window_warning_s > now:  # the window is still open
            wake = min(wake, warn_at)
        return {"seconds": max(1, wake - now)}

    def step_await_agent(self, event: dict) -> None:
        self.chats.park_token(event["chat_id"], event["conversation_id"], WaitingFor.AGENT, event["token"])

    def step_agent_check(self, event: dict) -> dict:
        chat = self._chat(event)
        now = int(self.clock())
        last = max(chat.last_message_at or 0, chat.assigned_at or 0)
        if now - last >= self.settings.agent_idle_s:
            return {"idle": True}
        lead = self.settings.window_warning_s
        if window.warning_due(chat.last_customer_message_at, chat.window_warning_at, now, lead):
            # Noted on the chat (the console shows it, with the template to offer) and counted, once per
            # window even when this step is retried or runs twice.
            due_from = window.window_expires_at(chat.last_customer_message_at) - lead
            if self.chats.note_window_warning(event["chat_id"], due_from, self.settings.window_warning_template):
                self.metrics("WindowClosingWarning")
        return {"idle": False}

    # --- the end --------------------------------------------------------------------------------------
    def step_finish(self, event: dict) -> dict:
        """End the conversation and, when wanted, ask the survey. Nothing in the workflow waits for
        the answer: ingest scores it until the survey's deadline (`ChatRepository.answer_survey`)."""
        return {"survey": self._finish(event, self._chat(event))}

    def _finish(self, event: dict, chat: Chat) -> bool:
        """The survey asked when wanted and possible, then the conversation's end, which leaves the
        survey's deadline on the chat in the same write."""
        asked = self._survey_wanted(chat) and self._ask_survey(event)
        self._end_conversation(event, chat, int(self.clock()) + self.settings.survey_timeout_s if asked else None)
        return asked

    def _end_conversation(self, event: dict, chat: Chat, survey_until: int | None = None) -> None:
        """The chat closed and whoever held it freed."""
        if chat.assignee:
            self.agents.release(chat.assignee)
        if self.connect is not None:
            self.connect.leave(event["chat_id"], chat)
        self.chats.end(event["chat_id"], survey_until)
        self.metrics("ConversationClosed")

    def _survey_wanted(self, chat: Chat) -> bool:
        """Configured, and the customer's window open to send it."""
        return self.settings.survey and window.is_open(chat.last_customer_message_at, int(self.clock()))

    def _ask_survey(self, event: dict) -> bool:
        """Send the survey. False: it could not be sent (the customer opted out meanwhile, the chat
        is gone, the queue refused it): the conversation ends without it."""
        try:
            # Keyed by the conversation: a retried close asks once.
            self.outbox.send(event["chat_id"], parse_send_request(survey.request(self.settings.survey_question)), source=Source.BOT,
                             idempotency_key=f"survey:{event['conversation_id']}")
        except (Refused, ChatNotFound, NotQueued):
            return False
        return True

    def _ask_survey_parking(self, event: dict) -> bool:
        """The survey asked for a definition whose own state waits for the answer on its token."""
        return self._ask_survey(event) and self.chats.park_token(event["chat_id"], event["conversation_id"], WaitingFor.SURVEY,
                                                                   event["token"])

    # --- executions the previous definition started (separate begin, customer wait, survey and
    # score states), served by the steps above until they end ---------------------------------------------
    step_bot_turn = step_converse

    def step_close(self, event: dict) -> dict | None:
        """`Close` as the definitions before had it: with a token, its state waits for the survey's
        answer (ingest ends the wait); without, the definition's own states ask the survey."""
        chat = self._chat(event)
        self._end_conversation(event, chat)
        wanted = self._survey_wanted(chat)
        if "token" not in event:
            return {"survey": wanted}
        if not (wanted and self._ask_survey_parking(event)):
            self.workflow.succeed(event["token"], {"survey": False})
        return None

    def step_begin(self, event: dict) -> dict:
        self._chat(event)
        if self.chats.begin(event["chat_id"]):
            self.metrics("ConversationStarted")
        return self.settings.timeouts()

    def step_await_customer(self, event: dict) -> None:
        def park() -> bool:
            return self.chats.park_token(event["chat_id"], event["conversation_id"], WaitingFor.CUSTOMER, event["token"],
                                         unless_pending=True)
        if not park() and not (self._moved(event) and park()):
            self.workflow.succeed(event["token"], {"pending": True})  # messages came while the bot was busy

    def step_connect_start(self, event: dict) -> dict:
        return {"handed": self._hand_to_connect(event)}

    def step_survey(self, event: dict) -> None:
        if not self._ask_survey_parking(event):
            self.workflow.succeed(event["token"], {"survey": False})

    def step_record_score(self, event: dict) -> dict:
        return {"score": (event.get("answer") or {}).get("score")}  # ingest recorded it before the wake

    def step_end(self, event: dict) -> dict:
        """The customer went quiet: the conversation ends, and the token of the wait that timed out goes."""
        self.chats.end(event["chat_id"])
        self.chats.take_token(event["chat_id"], WaitingFor.CUSTOMER)
        return {"ended": True}

    # --- helpers ----------------------------------------------------------------------------------------
    def _chat(self, event: dict) -> Chat:
        chat = event.pop(_HELD, None) or self.chats.get(event["chat_id"])
        if chat is None:
            raise ValueError("the conversation's chat does not exist")
        return chat

    def _follow(self, event: dict) -> None:
        """Point the step at the chat its conversation runs on now (a merge may have carried it to
        another chat), keeping what was read for the step's first `_chat`."""
        chat = self.chats.holding(event["chat_id"], event["conversation_id"])
        if chat is not None:
            event["chat_id"] = chat.chat_id
            event[_HELD] = chat

    def _moved(self, event: dict) -> bool:
        """After a refused write: did a merge carry the conversation to another chat? (The step then
        acts there.)"""
        before = event["chat_id"]
        self._follow(event)
        event.pop(_HELD, None)
        return event["chat_id"] != before

    def _release_offer(self, chat_id: str, chat: Chat) -> None:
        if chat.offered_to and chat.mode != ChatMode.AGENT:
            self.agents.release(chat.offered_to)
            self.chats.withdraw_offer(chat_id)


def _heartbeats(event: dict) -> Heartbeats:
    """How the bot phase's token is timed, as its definition's payload says."""
    return Heartbeats.of(event.get("heartbeat"))


__all__ = ["ConversationSteps", "BotOutcome", "HUMAN_TOOK_OVER"]
