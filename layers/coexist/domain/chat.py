"""The chat: one per business number and customer, and who holds it (docs/ARCHITECTURE.md rule 3).

A chat is always held by exactly one party, its `ChatMode`: the bot, the queue (waiting for an
agent), an agent, a person on the phone app, an Amazon Connect contact, or nobody (closed). Every
change of hands is a `ChatEvent`; `transition` says where an event takes a chat from each mode, or
refuses it with a typed reason. The chat repository writes a move only under the condition that
the chat is still in a mode the event is allowed from, so a racing change (an echo landing while
an agent accepts) is refused atomically instead of being overwritten.

While the conversation workflow waits, it parks a task token on the chat with what it waits for
(`WaitingFor`); `WAITS` says which mode each wait belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class ChatMode(StrEnum):
    BOT = "bot"  # the bot answers
    QUEUED = "queued"  # waiting for an agent (routing, an offer, or nobody was free)
    AGENT = "agent"  # an agent of the built-in directory handles it
    APP = "app"  # a person answered from the WhatsApp Business App on the phone
    CONNECT = "connect"  # an Amazon Connect chat contact holds it
    CLOSED = "closed"  # nobody: the conversation ended (a chat with no mode yet reads as closed)


class ChatEvent(StrEnum):
    BEGIN = "begin"  # workflow: a conversation starts with the bot
    PHONE_APP_REPLIED = "phone_app_replied"  # phone: an echo, someone answered from the app
    AGENT_REPLIED = "agent_replied"  # agent: answered from the inbox (a takeover from bot or app)
    BOT_RESUMED = "bot_resumed"  # workflow: the phone app went quiet for the cool-down
    QUEUED = "queued"  # workflow: escalated by the bot, released or transferred by the agent
    ACCEPTED = "accepted"  # agent: took the chat it was offered
    PICKED_UP = "picked_up"  # agent: took a chat that routing gave up on
    NOBODY_ACCEPTED = "nobody_accepted"  # workflow: routing gave up; the chat waits in the queue
    HANDED_TO_CONNECT = "handed_to_connect"  # workflow: an Amazon Connect contact took it
    CONNECT_FAILED = "connect_failed"  # workflow: the handoff failed; back to the built-in queue
    CLOSED_BY_AGENT = "closed_by_agent"  # agent: closed a chat outside a live conversation
    ENDED = "ended"  # workflow: closed, or a timeout ended it (customer, agent, Connect, survey)


class WaitingFor(StrEnum):
    CUSTOMER = "customer"  # the bot waits for the customer's next message
    ACCEPT = "accept"  # an agent was offered the chat
    AGENT = "agent"  # an agent handles it: release, transfer or close
    CONNECT = "connect"  # the Amazon Connect contact lasts
    SURVEY = "survey"  # the satisfaction survey's answer (until `survey_until`; ingest scores it)


class Heartbeats(IntEnum):
    """How the bot phase's token is timed and how its task ends, as the definition that started the
    execution expects: the `heartbeat` of its `BotTurn` payload, kept on the chat with the parked
    token (`Chat.token_heartbeat`) so that every later turn of the phase acts the same."""

    NONE = 0  # an earlier definition: the token's success is the wake, its next state the next turn
    SUCCESS_IS_NEXT_TURN = 1  # timed by heartbeats; the task's success starts the next `BotTurn`
    SUCCESS_ENDS = 2  # timed by heartbeats; a turn that resolves closes the conversation and ends the task

    @classmethod
    def of(cls, stored) -> "Heartbeats":
        """From a chat item or a payload, where the definition before stored `true`."""
        return cls(int(stored or 0))


class Takeover(StrEnum):
    """Where the person who took a chat from the bot answered."""

    APP = "app"  # the WhatsApp Business App
    AGENT = "agent"  # the agent inbox


class ConversationState(StrEnum):
    LIVE = "live"
    ENDED = "ended"


ANY = frozenset(ChatMode)
HUMAN = frozenset({ChatMode.AGENT, ChatMode.APP, ChatMode.CONNECT})

# Event -> (the modes it may move a chat from, the mode it moves it to).
RULES: dict[ChatEvent, tuple[frozenset[ChatMode], ChatMode]] = {
    ChatEvent.BEGIN: (frozenset({ChatMode.CLOSED, ChatMode.BOT}), ChatMode.BOT),
    ChatEvent.PHONE_APP_REPLIED: (ANY, ChatMode.APP),
    ChatEvent.AGENT_REPLIED: (frozenset({ChatMode.BOT, ChatMode.APP, ChatMode.AGENT}), ChatMode.AGENT),
    ChatEvent.BOT_RESUMED: (frozenset({ChatMode.APP, ChatMode.BOT}), ChatMode.BOT),
    # Not from the phone app: a person who answered there since the bot escalated keeps the chat.
    ChatEvent.QUEUED: (ANY - {ChatMode.CLOSED, ChatMode.APP}, ChatMode.QUEUED),
    # The agent took the offer's token before an echo could: the acceptance stands over that echo.
    ChatEvent.ACCEPTED: (frozenset({ChatMode.QUEUED, ChatMode.AGENT, ChatMode.APP}), ChatMode.AGENT),
    ChatEvent.PICKED_UP: (frozenset({ChatMode.QUEUED}), ChatMode.AGENT),
    ChatEvent.NOBODY_ACCEPTED: (frozenset({ChatMode.QUEUED}), ChatMode.QUEUED),
    ChatEvent.HANDED_TO_CONNECT: (frozenset({ChatMode.QUEUED, ChatMode.CONNECT}), ChatMode.CONNECT),
    ChatEvent.CONNECT_FAILED: (frozenset({ChatMode.CONNECT, ChatMode.QUEUED}), ChatMode.QUEUED),
    ChatEvent.CLOSED_BY_AGENT: (ANY - {ChatMode.CLOSED}, ChatMode.CLOSED),
    ChatEvent.ENDED: (ANY, ChatMode.CLOSED),
}

# What each parked wait means, as the mode the chat is in while it lasts.
WAITS: dict[WaitingFor, ChatMode] = {
    WaitingFor.CUSTOMER: ChatMode.BOT,
    WaitingFor.ACCEPT: ChatMode.QUEUED,
    WaitingFor.AGENT: ChatMode.AGENT,
    WaitingFor.CONNECT: ChatMode.CONNECT,
    WaitingFor.SURVEY: ChatMode.CLOSED,
}

_WHY = {
    ChatMode.BOT: "the bot holds the chat",
    ChatMode.QUEUED: "the chat waits for an agent",
    ChatMode.AGENT: "an agent holds the chat",
    ChatMode.APP: "a person answered from the phone app",
    ChatMode.CONNECT: "an Amazon Connect agent holds the chat",
    ChatMode.CLOSED: "the chat is closed",
}


@dataclass(frozen=True)
class TransitionRefused(Exception):
    """`event` cannot move a chat out of `mode`."""

    mode: ChatMode
    event: ChatEvent

    def __str__(self) -> str:
        return f"{self.event.value} is not possible: {_WHY[self.mode]}"


def allowed_from(event: ChatEvent) -> frozenset[ChatMode]:
    return RULES[event][0]


def transition(mode: ChatMode, event: ChatEvent) -> ChatMode:
    """The mode `event` moves a chat in `mode` to; `TransitionRefused` if it may not."""
    sources, target = RULES[event]
    if mode not in sources:
        raise TransitionRefused(mode, event)
    return target


def may(mode: ChatMode, event: ChatEvent) -> bool:
    return mode in allowed_from(event)


@dataclass(frozen=True)
class Chat:
    """A chat as the domain sees it. Times are Unix seconds; absent facts are None."""

    phone_number_id: str
    wa_id: str | None  # the customer's phone number, when known (a customer with a username may hide it)
    chat_id: str  # the customer's opaque id (coexist.domain.identity.CUSTOMER_ID)
    mode: ChatMode = ChatMode.CLOSED
    created_at: int | None = None
    last_message_at: int | None = None
    last_customer_message_at: int | None = None
    last_app_activity_at: int | None = None
    referral_at: int | None = None  # the customer came from a click-to-WhatsApp ad
    entry_point_replied_at: int | None = None  # our first reply to that referral (free entry point)
    # The conversation (one workflow execution) and its waits.
    conversation_id: str | None = None
    conversation_state: ConversationState | None = None
    conversation_started_at: int | None = None
    pending_messages: frozenset[str] = frozenset()
    waiting_for: WaitingFor | None = None
    # The workflow's task tokens, by their reference (coexist.store.task_tokens): what the chat holds.
    workflow_token: str | None = field(default=None, repr=False)
    bot_token: str | None = field(default=None, repr=False)
    # The token waiting for the customer is a bot turn's whose timeout is a heartbeat (Heartbeats):
    # the customer's message runs the next turn itself (coexist.conversation.workflow.BotLoop)
    # instead of ending the task, so the workflow makes no transition per message.
    token_heartbeat: Heartbeats = Heartbeats.NONE
    # The bot's memory for this conversation.
    bot_intent: str | None = None
    bot_failures: int = 0
    bot_session: dict = field(default_factory=dict)
    # People.
    assignee: str | None = None
    offered_to: str | None = None
    transfer_to: str | None = None
    transfer_skill: str | None = None
    queued_at: int | None = None
    assigned_at: int | None = None
    unassigned_at: int | None = None
    takeover_by: Takeover | None = None
    takeover_at: int | None = None
    first_human_reply_at: int | None = None
    window_warning_at: int | None = None
    window_warning_template: str | None = None  # "name:language" offered with the warning, if configured
    closed_at: int | None = None
    survey_until: int | None = None  # an answer to the survey that comes later is a new message
    satisfaction_score: int | None = None
    satisfaction_at: int | None = None
    # Amazon Connect (coexist.conversation.connect); the tokens are credentials.
    connect_contact_id: str | None = None
    connect_instance_id: str | None = None
    connect_conversation_id: str | None = None
    connect_handoff_key: str | None = None
    handed_to_connect_at: int | None = None
    connect_ended_at: int | None = None
    connect_agent_left_at: int | None = None
    connect_participant_token: str | None = field(default=None, repr=False)
    connect_connection_token: str | None = field(default=None, repr=False)
    connect_connection_expires_at: int | None = None
    # Who the customer is besides the phone number (coexist.domain.identity), copied from the customer.
    user_id: str | None = None  # business-scoped user id (BSUID)
    parent_user_id: str | None = None
    username: str | None = None  # display only: it changes
    identity_version: int = 0
    identity_changes: tuple[dict, ...] = ()  # user_changed_number / user_changed_user_id, oldest first
    merged_from: frozenset[str] = frozenset()  # chats of the same person folded into this one
    merged_into: str | None = None  # this chat was folded into that one
    # The reminder the customer asked to reschedule (coexist.reminders), for the bot or the person next.
    reminder_context: dict | None = None

    @property
    def recipient(self) -> tuple[str | None, str | None]:
        """Where a message to the customer goes: the phone number, else the BSUID (Meta prefers the number)."""
        return (self.wa_id, None) if self.wa_id else (None, self.user_id or self.parent_user_id)

    @property
    def live(self) -> bool:
        """A conversation workflow is running on this chat."""
        return self.conversation_state == ConversationState.LIVE

    @property
    def in_connect_contact(self) -> bool:
        """An Amazon Connect contact of the current conversation holds the chat (not ended yet)."""
        return bool(self.connect_contact_id) and not self.connect_ended_at and self.connect_conversation_id == self.conversation_id

    def waiting_at(self, now: int) -> WaitingFor | None:
        """What the chat waits for at `now`: the survey's answer only until its deadline (nothing
        clears the mark when it passes; the next conversation does)."""
        if self.waiting_for == WaitingFor.SURVEY and self.survey_until is not None and now > self.survey_until:
            return None
        return self.waiting_for

    def waits_for(self, what: WaitingFor) -> bool:
        return self.waiting_for == what and self.workflow_token is not None

    def last_human_at(self) -> int:
        """When a person last answered (phone app or a takeover from the inbox)."""
        return max(self.last_app_activity_at or 0, self.takeover_at or 0)


# --- two chats of one person merged (rule 15) ------------------------------------------------------

class MergeSide(StrEnum):
    """Which of two merged chats' conversations the surviving chat holds afterwards."""

    SURVIVOR = "survivor"  # the chat the person is kept in (coexist.domain.identity.resolve chose it)
    MERGED = "merged"  # the chat folded into it


# Who holds a chat, from nobody to the person most engaged: the bot, waiting for a person, someone
# who answered on the phone, an agent of the inbox (who holds a slot of their capacity and whose
# release or close the workflow waits for), an Amazon Connect contact (a call-centre session that
# cannot be handed to another chat's agent).
HOLD_ORDER: tuple[ChatMode, ...] = (ChatMode.CLOSED, ChatMode.BOT, ChatMode.QUEUED, ChatMode.APP, ChatMode.AGENT, ChatMode.CONNECT)


def hold_strength(mode: ChatMode, live: bool) -> tuple[int, bool]:
    """How strongly a chat is held: by whom first, then whether a conversation is running on it."""
    return HOLD_ORDER.index(mode), live


def conversation_kept(survivor: Chat, merged: Chat) -> MergeSide:
    """When two chats of one person merge, whose conversation the surviving chat goes on with.

    The more human hold wins (`HOLD_ORDER`), then a running conversation over none; on a tie the
    surviving chat keeps its own, so a replayed merge, or the same merge decided twice, never moves a
    conversation back and forth. The other conversation is superseded: its workflow is stopped and
    the agents it held are freed.
    """
    if hold_strength(merged.mode, merged.live) > hold_strength(survivor.mode, survivor.live):
        return MergeSide.MERGED
    return MergeSide.SURVIVOR


def holds_anything(chat: Chat) -> bool:
    """Does ending this chat's hold need anything done outside the chat: a workflow to stop, or an
    agent whose slot it counts (assigned, or offered and reserved)?"""
    return chat.live or chat.assignee is not None or chat.offered_to is not None
