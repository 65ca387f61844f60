"""The chats table, and the only code that writes it.

One item per business number and customer, keyed by the customer's opaque id (`chat_id`), listed
newest first per number through `by_recent` and per agent through `by_assignee`. The customer's
identifiers (`wa_id`, `user_id`, `username`) are a copy of the customer's (store/customers.py),
moved forward only by `identity_version`. Besides chats the table holds one small item per Amazon
Connect contact (`connect#<contact id>`), so a streaming event finds its chat with a key read.

Every change of hands is a `ChatEvent` written under the condition that the chat is still in a mode
the event may move it from (`coexist.domain.chat.RULES`); a refused move returns False and writes
nothing. Each wait of the conversation workflow parks its task token here and whoever has the
awaited news takes it atomically, so a token is signalled once even when two signals race.

Two chats of one person merge through `fold_in`: the hold that wins (`domain.chat.conversation_kept`)
moves, tokens and all, in one transaction with the merged chat's tombstone (`merged_into`), which
keeps the superseded hold (`superseded`) until whoever ends it takes it.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, fields

from botocore.exceptions import ClientError

from coexist.domain.chat import (
    RULES, Chat, ChatEvent, ChatMode, ConversationState, Heartbeats, MergeSide, Takeover, WaitingFor, allowed_from,
    conversation_kept, holds_anything,
)
from coexist.domain.window import ENTRY_POINT_REPLY_S
from coexist.domain.identity import Customer, is_customer_id
from coexist.domain.records import ChatActivity
from coexist.resources import CONTACT_MAP_PREFIX
from coexist.store.conditional import is_condition_failure, put_if_absent, raise_to, refused_item, update_if
from coexist.store.items import from_item_value, to_item_value
from coexist.store.memo import BoundedMemo
from coexist.store.queries import index_page
from coexist.store.retention import RETENTION_KEYS, ChatRetention, retention_keys
from coexist.store.task_tokens import WholeTokens

log = logging.getLogger(__name__)
BY_RECENT = "by_recent"
SATISFACTION_RECORDED = "satisfaction_recorded"  # told to the observer beside the ChatEvents
BY_ASSIGNEE = "by_assignee"
# What the bot needs of each customer message waiting for it (`add_pending`), beside its id in
# `pending_messages`, so that the bot's turn reads none of them. A copy lives on the chat from the
# message's arrival to the turn's start; a conversation that ends leaves none behind (`_move`).
PENDING_INPUTS = "pending_inputs"
# A longer text is not copied (the turn reads its message): every write of a chat item costs a write
# unit per KB of it while the copy is there.
CARRIED_TEXT_MAX_BYTES = 1024
# The turn id under which a lost bot turn's token is held (`hold_lost_turn`): no invocation has it.
LOST_TURN = "lost"

# What one conversation leaves on the chat; a new conversation starts without it (its first-response
# time, survey score, bot memory… are its own).
PER_CONVERSATION = (
    "workflow_token", "waiting_for", "bot_token", "bot_turn", "token_heartbeat", "offered_to", "queued_at", "assigned_at", "first_human_reply_at",
    "closed_at", "survey_until", "satisfaction_score", "satisfaction_at", "takeover_by", "takeover_at", "window_warning_at", "window_warning_template",
    "unassigned_at", "bot_intent", "bot_failures", "bot_session", "transfer_to", "transfer_skill",
)
# What a chat carries while a Connect contact holds it; the tokens are credentials, removed first.
CONNECT_CREDENTIALS = ("connect_participant_token", "connect_connection_token", "connect_connection_expires_at")
CONNECT_FIELDS = ("connect_contact_id", "connect_instance_id", "connect_conversation_id", "connect_handoff_key",
                  "handed_to_connect_at", "connect_ended_at", "connect_agent_left_at") + CONNECT_CREDENTIALS

_CHAT_FIELDS = {f.name for f in fields(Chat)}
_PLACEHOLDER = re.compile(r"#\w+")
_EXISTS = "attribute_exists(chat_id)"  # the key: present on every stored chat
_ENUMS = {"mode": ChatMode, "conversation_state": ConversationState, "waiting_for": WaitingFor, "takeover_by": Takeover}


def _grouped(condition: str) -> str:
    """`condition` safe to AND with another: parenthesised when an OR sits at its top level
    (DynamoDB refuses parentheses around what is already one group)."""
    depth = 0
    for i, char in enumerate(condition):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and condition.startswith(" OR ", i):
            return f"({condition})"
    return condition


def chat_from_item(item: dict) -> Chat:
    """The typed chat from its item (attributes this version does not know are ignored)."""
    values = from_item_value({k: v for k, v in item.items() if k in _CHAT_FIELDS})
    for name, kind in _ENUMS.items():
        if values.get(name) is not None:
            values[name] = kind(values[name])
    if values.get("mode") is None:
        values.pop("mode", None)  # a chat no conversation has touched yet reads as closed
    values["pending_messages"] = frozenset(values.get("pending_messages") or ())
    values["bot_session"] = dict(values.get("bot_session") or {})
    values["bot_failures"] = int(values.get("bot_failures") or 0)
    values.setdefault("wa_id", None)
    values["identity_version"] = int(values.get("identity_version") or 0)
    values["identity_changes"] = tuple(values.get("identity_changes") or ())
    values["merged_from"] = frozenset(values.get("merged_from") or ())
    values["token_heartbeat"] = Heartbeats.of(values.get("token_heartbeat"))
    return Chat(**values)


def _turn_sets(failures: int, session: dict, intent: str | None) -> dict:
    """What a bot turn leaves on the chat: the bot's memory for the conversation."""
    return {"bot_failures": failures, "bot_session": session} | ({"bot_intent": intent} if intent else {})


def _older(held, at: int) -> bool:
    """Whether a stored time (absent: never set) is older than `at`: raising it to `at` moves it forward."""
    return held is None or int(held) < at


def key_of(chat_id: str) -> dict:
    return {"chat_id": chat_id}


MAX_MERGE_HOPS = 5  # merged_into links followed to the chat a conversation runs on now
FOLD_ATTEMPTS = 5  # merges decided again after a racing change to either chat
# Who holds a chat and the conversation running on it: what a merge moves to the surviving chat
# when the merged chat's hold wins (coexist.domain.chat.conversation_kept).
HOLD = ("mode", "conversation_id", "conversation_state", "conversation_started_at", "pending_messages", "pending_inputs",
        "assignee") \
    + PER_CONVERSATION + CONNECT_FIELDS
# A merge is decided on these; it is written only if neither chat changed them meanwhile.
GUARD = ("mode", "conversation_id", "conversation_state", "waiting_for", "workflow_token", "bot_token", "assignee", "offered_to")


# What a chat keyed by phone number keeps when re-keyed by its customer (import_legacy).
LEGACY_KEPT = ("mode", "created_at", "last_message_at", "last_customer_message_at", "last_app_activity_at", "referral_at",
               "entry_point_replied_at", "assignee", "assigned_at", "queued_at", "closed_at", "first_human_reply_at",
               "satisfaction_score", "satisfaction_at", "takeover_by", "takeover_at", "bot_intent")


class FoldConflict(Exception):
    """Signals and steps kept changing the chats being merged; the webhook is retried by the queue."""


@dataclass(frozen=True)
class Superseded:
    """A hold ended by a merge (the other chat's won): its workflow to stop, the agents to free."""

    chat_id: str  # the merged chat, where it is recorded until ended
    conversation_id: str | None = None  # the workflow execution's name, if one was running
    agents: tuple[str, ...] = ()  # agents whose capacity it counted: assigned, or offered
    connect_contact: tuple[str, str] | None = None  # (instance id, contact id) of an open Amazon Connect contact


@dataclass(frozen=True)
class WaitingMessage:
    """A customer message a bot turn takes: its id and, when the chat carried it (`add_pending`),
    what the bot needs of it (id, type, text, timestamp, reply); None: the turn reads the message."""

    id: str
    carried: dict | None = None


@dataclass(frozen=True)
class BotHold:
    """What a bot's reply is stored under: its turn (`token`, of conversation `conversation_id`)
    still holds the chat, which is in the bot's hands. A person who takes over takes the turn's
    token, so a reply stored under the hold is never stored (nor sent) over them. `turn`: the reply
    is the turn's last, and the write also records the turn (bot_failures, bot_session, bot_intent)
    and parks its token for the customer's next message, unless customer messages came meanwhile."""

    conversation_id: str
    token: str
    turn: dict | None = None  # {"failures": int, "session": dict, "intent": str | None}
    heartbeat: Heartbeats = Heartbeats.NONE  # how the token's wait is timed (Chat.token_heartbeat)


@dataclass(frozen=True)
class CustomerWait:
    """The workflow's token that waited for the customer, taken off the chat."""

    token: str
    heartbeat: Heartbeats  # a bot turn timed by heartbeats: the message runs the next turn (BotLoop)

    @classmethod
    def taken_from(cls, old: dict, resolve) -> "CustomerWait":
        """From the chat as the write that took the token returned it (`resolve`: the token its
        reference stands for, `TaskTokens.resolve`)."""
        return cls(resolve(old["workflow_token"]), Heartbeats.of(old.get("token_heartbeat")))


def _names_token(attribute: str, token: str, stored: str, values: dict) -> str:
    """The condition that `attribute` names `token`: by its reference (`stored`, what this process
    writes) or, on a chat written before references, by the whole token."""
    values[":t"] = stored
    if stored == token:
        return f"{attribute} = :t"
    values[":whole"] = token
    return f"{attribute} IN (:t, :whole)"


class DuplicateTurn(Exception):
    """A bot turn was delivered a second time (a retried begin, Lambda's own duplicate): another
    invocation's turn holds the token, or the token already waits for the customer. It takes nothing."""


class BotReplyWrite:
    """The chat's side of a bot reply's transaction: the chat's recency raised to the reply's time
    and, for the turn's last reply, the turn's end, on the condition that the bot's turn still holds
    the chat. A refusal returns the chat as it is; `refused` decides from it what still applies (the
    recency only moves forward, the token waits for the customer only when nothing is pending) or
    that the bot lost the chat."""

    def __init__(self, table_name: str, chat_id: str, hold: BotHold, at: int, stored: str):
        self.table_name, self.chat_id, self.hold, self.at = table_name, chat_id, hold, at
        self.stored = stored  # what the chat holds for the hold's token (its reference)
        self.recency = True
        self.parks = hold.turn is not None  # False once customer messages are found waiting

    def element(self) -> dict:
        """The TransactWriteItems element: an Update, or only a ConditionCheck when nothing is left
        to write (a newer recency, and not the turn's last reply)."""
        values: dict = {":c": self.hold.conversation_id, ":bot": ChatMode.BOT.value}
        conditions = [_EXISTS, _names_token("bot_token", self.hold.token, self.stored, values), "#mode = :bot", "conversation_id = :c"]
        sets, removes = [], []
        if self.recency:
            sets.append("last_message_at = :at")
            values[":at"] = self.at
            conditions.append("(attribute_not_exists(last_message_at) OR last_message_at <= :at)")
        if self.hold.turn is not None:
            turn = self.hold.turn
            sets += ["bot_failures = :failures", "bot_session = :session"]
            values |= {":failures": int(turn.get("failures") or 0), ":session": to_item_value(turn.get("session") or {})}
            if turn.get("intent"):
                sets.append("bot_intent = :intent")
                values[":intent"] = turn["intent"]
        if self.parks:
            sets += ["workflow_token = :t", "waiting_for = :customer"]
            removes.append("bot_token")
            if self.hold.heartbeat:
                sets.append("token_heartbeat = :beats")
                values[":beats"] = int(self.hold.heartbeat)
            else:
                removes.append("token_heartbeat")
            values |= {":customer": WaitingFor.CUSTOMER.value, ":zero": 0}
            conditions.append("(attribute_not_exists(pending_messages) OR size(pending_messages) = :zero)")
        common = {"TableName": self.table_name, "Key": key_of(self.chat_id), "ConditionExpression": " AND ".join(conditions),
                  "ExpressionAttributeNames": {"#mode": "mode"}, "ExpressionAttributeValues": values,
                  "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        if not sets:
            return {"ConditionCheck": common}
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return {"Update": {**common, "UpdateExpression": expression}}

    def refused(self, item: dict | None) -> bool:
        """The write was refused with the chat as it is (`item`, None when it is gone): True when the
        bot's turn still holds it, the write then narrowed to what still applies; False when a person
        (or a merge, or an erasure) took it: nothing may be stored or sent."""
        item = item or {}
        held = (item.get("bot_token") in (self.stored, self.hold.token) and item.get("mode") == ChatMode.BOT.value
                and item.get("conversation_id") == self.hold.conversation_id)
        if not held:
            return False
        last = item.get("last_message_at")
        self.recency = self.recency and (last is None or int(last) <= self.at)
        self.parks = self.parks and not item.get("pending_messages")
        return True


def _queued(message_id: str, carried: dict | None, also_set: str = "") -> tuple[str, dict]:
    """The update that queues a customer message for the bot: its id on `pending_messages` and,
    unless its text is over `CARRIED_TEXT_MAX_BYTES`, its copy on `pending_inputs`. `also_set`:
    more of the same write's SET clause."""
    values: dict = {":ids": {message_id}, ":id": message_id}
    sets = [also_set] if also_set else []
    if carried is not None and len((carried.get("text") or "").encode()) <= CARRIED_TEXT_MAX_BYTES:
        copy = {k: v for k, v in {**carried, "id": message_id}.items() if v is not None}
        values |= {":none": [], ":copy": [to_item_value(copy)]}
        sets.append(f"{PENDING_INPUTS} = list_append(if_not_exists({PENDING_INPUTS}, :none), :copy)")
    return ("SET " + ", ".join(sets) + " " if sets else "") + "ADD pending_messages :ids", values


def _superseded_record(chat: Chat) -> dict:
    record: dict = {"agents": sorted({a for a in (chat.assignee, chat.offered_to) if a})}
    if chat.live and chat.conversation_id:
        record["conversation_id"] = chat.conversation_id
    if chat.live and chat.in_connect_contact:  # the tombstone drops the chat's Connect fields: kept here to end it
        record["connect"] = {"instance_id": chat.connect_instance_id or "", "contact_id": chat.connect_contact_id}
    return record


def _superseded_of(merged_id: str, item: dict) -> Superseded | None:
    record = item.get("superseded")
    if not record:
        return None
    connect = record.get("connect")
    return Superseded(merged_id, record.get("conversation_id"), tuple(record.get("agents") or ()),
                      (connect["instance_id"], connect["contact_id"]) if connect else None)


def _unchanged(item: dict, prefix: str) -> tuple[str, dict, dict]:
    """A condition that the chat's `GUARD` attributes are still as read in `item`."""
    parts, names, values = [], {}, {}
    for i, name in enumerate(GUARD):
        names[f"#{prefix}g{i}"] = name
        if name in item:
            parts.append(f"#{prefix}g{i} = :{prefix}g{i}")
            values[f":{prefix}g{i}"] = item[name]
        else:
            parts.append(f"attribute_not_exists(#{prefix}g{i})")
    return " AND ".join(parts), names, values


class ChatRepository:
    def __init__(self, table, clock=time.time, observer=None, tokens=None):
        self.table = table
        self.clock = clock
        # Where the workflow's task tokens are kept: the chat holds each one's reference
        # (store/task_tokens.py); without a token table, the tokens themselves.
        self.tokens = tokens or WholeTokens()
        self.retention = ChatRetention(table)  # the retention index's reads and writes (store/retention.py)
        # Told of every change of hands once it is written: observer(event, chat before, what was set).
        # It reports (domain events for CRMs); it is never allowed to undo or fail the write.
        self.observer = observer
        # The identity version each chat is known to hold at least (versions only move forward):
        # a copy this process knows to be there already is not written again on every webhook.
        self._identity_held = BoundedMemo()

    def erase(self, chat_id: str) -> bool:
        """A customer's erasure: the chat item goes (its messages, contact and identity rows are
        erased by their own stores). True if it existed."""
        return self.table.delete_item(Key=key_of(chat_id), ReturnValues="ALL_OLD").get("Attributes") is not None

    # --- reads ---------------------------------------------------------------------------------
    def get(self, chat_id: str, consistent: bool = True) -> Chat | None:
        if not is_customer_id(chat_id):
            return None
        item = self.table.get_item(Key=key_of(chat_id), ConsistentRead=consistent).get("Item")
        return chat_from_item(item) if item else None

    def holding(self, chat_id: str, conversation_id: str) -> Chat | None:
        """The chat a conversation runs on now: `chat_id`, or the chat it was merged into when the
        merge carried this conversation there (`fold_in`). One read unless the chat was merged; a
        conversation a merge superseded finds its old chat (the tombstone), which holds nothing."""
        chat = first = self.get(chat_id)
        for _ in range(MAX_MERGE_HOPS):
            if chat is None or chat.conversation_id == conversation_id or not chat.merged_into:
                break
            chat = self.get(chat.merged_into)
        return chat if chat is not None and chat.conversation_id == conversation_id else first

    def list_recent(self, phone_number_id: str, limit: int, start_key: dict | None) -> tuple[list[Chat], dict | None]:
        """Newest first. Chats without any message yet are not listed (no sort key)."""
        items, last = index_page(self.table, BY_RECENT, "phone_number_id", phone_number_id, limit, start_key, newest_first=True)
        return [chat_from_item(i) for i in items], last

    def list_recent_in_mode(self, phone_number_id: str, mode: ChatMode | None, limit: int,
                            start_key: dict | None) -> tuple[list[Chat], dict | None]:
        """One read of `by_recent` (newest first) keeping the chats in `mode` (all when None). A read
        can keep fewer than `limit` chats: page on the returned key."""
        kwargs: dict = {
            "IndexName": BY_RECENT,
            "KeyConditionExpression": "phone_number_id = :number",
            "ExpressionAttributeValues": {":number": phone_number_id},
            "Limit": limit,
            "ScanIndexForward": False,
        }
        if mode:
            kwargs["ExpressionAttributeNames"] = {"#mode": "mode"}
            kwargs["ExpressionAttributeValues"][":mode"] = mode.value
            # A chat nobody has worked on yet has no mode: it reads as closed.
            kwargs["FilterExpression"] = "#mode = :mode" + (" OR attribute_not_exists(#mode)" if mode == ChatMode.CLOSED else "")
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        response = self.table.query(**kwargs)
        return [chat_from_item(i) for i in response.get("Items", [])], response.get("LastEvaluatedKey")

    def active_since(self, phone_number_id: str, since: int, cap: int) -> tuple[list[Chat], bool]:
        """The chats with a message at or after `since`, newest first, at most `cap`; and whether
        there were more than `cap` (a range on the newest-first index, for the supervisor's figures)."""
        found: list[dict] = []
        kwargs: dict = {
            "IndexName": BY_RECENT,
            "KeyConditionExpression": "phone_number_id = :number AND last_message_at >= :since",
            "ExpressionAttributeValues": {":number": phone_number_id, ":since": since},
            "ScanIndexForward": False,
            "Limit": cap + 1,
        }
        while True:
            response = self.table.query(**kwargs)
            found += response.get("Items", [])
            if len(found) > cap or "LastEvaluatedKey" not in response:
                return [chat_from_item(i) for i in found[:cap]], len(found) > cap
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def list_of_agent(self, assignee: str, limit: int, start_key: dict | None) -> tuple[list[Chat], dict | None]:
        items, last = index_page(self.table, BY_ASSIGNEE, "assignee", assignee, limit, start_key, newest_first=True)
        return [chat_from_item(i) for i in items], last

    # --- what the webhooks tell -------------------------------------------------------------------
    def record_activity(self, activity: ChatActivity) -> int | None:
        """Move each activity time forward; an older webhook arriving late changes nothing. Returns
        when a campaign last wrote to the chat (the mark its send left, returned by the window's
        update), so that only those customers' messages are looked up as replies to a campaign; the
        customer's message time when that update changed nothing (a late message: look it up)."""
        key = key_of(activity.chat_id)
        identity = {"phone_number_id": activity.phone_number_id}
        campaign_wrote = None
        if activity.last_customer_message_at is not None:  # the recency, if it moves, in the same update
            campaign_wrote = self._customer_wrote(key, activity.last_customer_message_at, activity.phone_number_id,
                                                  message_at=activity.last_message_at)
        if activity.last_app_activity_at is not None:
            # A person answered from the phone: the chat is theirs now (rule 3), from any mode.
            target = RULES[ChatEvent.PHONE_APP_REPLIED][1]
            raise_to(self.table, key, "last_app_activity_at", activity.last_app_activity_at, {**identity, "mode": target.value})
        if activity.referral_at is not None:
            raise_to(self.table, key, "referral_at", activity.referral_at, identity)
        if activity.last_message_at is not None and activity.last_customer_message_at is None:
            raise_to(self.table, key, "last_message_at", activity.last_message_at, identity)
        return campaign_wrote

    def _customer_wrote(self, key: dict, customer_at: int, phone_number_id: str, message_at: int | None = None) -> int | None:
        """The customer's last message time raised (a chat seen for the first time starts with the
        bot) and, given `message_at`, the chat's recency with it: one update when the message is
        newer than both (the common case), or as new as the recency.

        Each time only moves forward and DynamoDB has no max(): the update is conditioned on the
        window being older and the recency no newer, and when it refuses, the chat as it was
        (returned with the refusal) says which one still moves: the window alone when an agent's
        later reply holds the recency, the recency alone when a newer customer message holds the
        window, neither for a late message. Returns the chat's campaign mark as it was
        (`customer_at` when the window did not move)."""
        sets = "SET #a = :v, phone_number_id = :number, #mode = if_not_exists(#mode, :mode), created_at = if_not_exists(created_at, :now)"
        condition = "(attribute_not_exists(#a) OR #a < :v)"
        values = {":v": customer_at, ":number": phone_number_id, ":mode": ChatMode.BOT.value, ":now": int(self.clock())}
        if message_at is not None:
            # At the recency's own second (a customer who writes again in the second the bot or an
            # agent answered in) the recency stays as it is and the window moves in the same write.
            sets += ", last_message_at = :m"
            condition += " AND (attribute_not_exists(last_message_at) OR last_message_at <= :m)"
            values[":m"] = message_at
        try:
            old = self.table.update_item(
                Key=key, UpdateExpression=sets, ConditionExpression=condition,
                ExpressionAttributeNames={"#a": "last_customer_message_at", "#mode": "mode"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",  # no read: what the write replaced comes back with it
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ).get("Attributes") or {}
        except ClientError as error:
            held = refused_item(error) or {}
            if message_at is None:
                return customer_at
            campaign_wrote = customer_at
            if _older(held.get("last_customer_message_at"), customer_at):
                campaign_wrote = self._customer_wrote(key, customer_at, phone_number_id)
            if _older(held.get("last_message_at"), message_at):
                raise_to(self.table, key, "last_message_at", message_at, {"phone_number_id": phone_number_id})
            return campaign_wrote
        return int(old["campaign_wrote_at"]) if "campaign_wrote_at" in old else None

    def raise_last_message(self, chat_id: str, at: int, campaign: bool = False) -> None:
        """The chat's recency; a campaign's send also marks the chat (`campaign_wrote_at`), so that
        only its customers' next messages are looked up as replies to a campaign."""
        sets, values = "SET last_message_at = :v", {":v": at}
        if campaign:
            sets += ", campaign_wrote_at = :v"
        if not update_if(self.table, Key=key_of(chat_id), UpdateExpression=sets,
                         ConditionExpression=f"{_EXISTS} AND (attribute_not_exists(last_message_at) OR last_message_at < :v)",
                         ExpressionAttributeValues=values) and campaign:
            update_if(self.table, Key=key_of(chat_id), UpdateExpression="SET campaign_wrote_at = :v",
                      ConditionExpression=_EXISTS, ExpressionAttributeValues=values)

    # --- who the customer is ------------------------------------------------------------------------
    def record_identity(self, chat_id: str, customer: Customer, existing_only: bool = False) -> bool:
        """Copy the customer's identifiers onto its chat, if newer than the copy there."""
        sets, values = ["phone_number_id = :number", "identity_version = :v"], {":number": customer.phone_number_id, ":v": customer.identity_version}
        removes = []
        for name in ("wa_id", "user_id", "parent_user_id", "username"):
            value = getattr(customer, name)
            if value is None:
                removes.append(name)
            else:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
        if self._identity_held.get(chat_id, -1) >= customer.identity_version:
            return False  # the chat holds this copy or a newer one: the write would be refused
        condition = "(attribute_not_exists(identity_version) OR identity_version < :v)"
        if existing_only:
            condition = f"{_EXISTS} AND {condition}"
        try:
            self.table.update_item(
                Key=key_of(chat_id),
                UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
                ConditionExpression=condition, ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            held = (refused_item(error) or {}).get("identity_version")
            if held is not None:  # refused for a newer copy, not for a chat that does not exist yet
                self._identity_held.put(chat_id, int(held))
            return False
        self._identity_held.put(chat_id, customer.identity_version)
        return True

    def record_identity_change(self, chat_id: str, kind: str, at: int, message_id: str) -> bool:
        """A number or BSUID change, kept on the chat once per notice (its system message id)."""
        return update_if(
            self.table, Key=key_of(chat_id),
            UpdateExpression="SET identity_changes = list_append(if_not_exists(identity_changes, :empty), :change) "
            "ADD identity_change_ids :ids",
            ConditionExpression=f"{_EXISTS} AND NOT contains(identity_change_ids, :id)",
            ExpressionAttributeValues={":empty": [], ":change": [{"kind": kind, "at": at, "message_id": message_id}],
                                       ":ids": {message_id}, ":id": message_id},
        )

    def fold_in(self, survivor_id: str, merged_id: str) -> Superseded | None:
        """Fold a chat of the same person into this one (a merge), once.

        The window and every activity time move forward to the later of the two, and both chats
        record the merge. Who holds the surviving chat afterwards is `coexist.domain.chat
        .conversation_kept`: when the merged chat's hold wins, its mode, conversation (the running
        workflow's id, its parked task tokens and pending messages), assignee, offer and Amazon
        Connect contact move onto the surviving chat in one transaction with the merged chat's
        tombstone, so a token is parked on exactly one chat at any time and whoever has the awaited
        news (the customer's next message, the agent's release) takes it there, once. The losing
        hold is `Superseded`: kept on the tombstone until `take_superseded`, for the caller to stop
        its workflow and free its agents. A replayed merge changes nothing and answers the superseded
        hold still waiting to be ended, if any.
        """
        for _ in range(FOLD_ATTEMPTS):
            merged_item = self.table.get_item(Key=key_of(merged_id), ConsistentRead=True).get("Item")
            if merged_item is None:
                return None
            if merged_item.get("merged_into"):
                return _superseded_of(merged_id, merged_item)
            merged = chat_from_item(merged_item)
            for name in ("last_message_at", "last_customer_message_at", "last_app_activity_at", "referral_at"):
                value = getattr(merged, name)
                if value is not None:
                    raise_to(self.table, key_of(survivor_id), name, value)
            survivor_item = self.table.get_item(Key=key_of(survivor_id), ConsistentRead=True).get("Item") or {}
            survivor = chat_from_item({"chat_id": survivor_id, "phone_number_id": merged.phone_number_id, **survivor_item})
            kept = conversation_kept(survivor, merged)
            carried, lost = (merged_item, survivor) if kept == MergeSide.MERGED else (None, merged)
            superseded = _superseded_record(lost) if holds_anything(lost) else None
            try:
                self.table.meta.client.transact_write_items(TransactItems=[
                    self._survivor_update(survivor_id, survivor_item, carried, merged_id),
                    self._tombstone(merged_id, merged_item, survivor_id, superseded),
                ])
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                continue  # one of the two chats changed meanwhile (a signal, a step): decide again
            if carried is not None and merged.connect_contact_id and merged.conversation_id:
                self.map_contact(merged.connect_contact_id, survivor_id, merged.conversation_id)
            return _superseded_of(merged_id, {"superseded": superseded}) if superseded else None
        raise FoldConflict("the chats kept changing while being merged")

    def _survivor_update(self, survivor_id: str, item: dict, carried: dict | None, merged_id: str) -> dict:
        """The surviving chat records the merge and, when the merged chat's hold won, takes it over;
        on the condition that its own hold is still the one the decision was made on."""
        names, values = {"#merged_from": "merged_from"}, {":merged": {merged_id}}
        sets, removes = [], []
        if carried is not None:
            for i, name in enumerate(HOLD):
                names[f"#h{i}"] = name
                if name in carried:
                    sets.append(f"#h{i} = :h{i}")
                    values[f":h{i}"] = carried[name]
                else:
                    removes.append(f"#h{i}")
        expression = ("SET " + ", ".join(sets) + " " if sets else "") + ("REMOVE " + ", ".join(removes) + " " if removes else "")
        condition, guard_names, guard_values = _unchanged(item, "s")
        return {"Update": {
            "TableName": self.table.name, "Key": key_of(survivor_id),
            "UpdateExpression": expression + "ADD #merged_from :merged",
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names | guard_names, "ExpressionAttributeValues": values | guard_values,
        }}

    def _tombstone(self, merged_id: str, item: dict, survivor_id: str, superseded: dict | None) -> dict:
        """The merged chat stays as the record of the merge, pointing at the chat that holds the person
        now: out of the number's listing (no last_message_at) and the agent's (no assignee), holding
        no conversation (its hold moved, or was superseded and is kept here until it is ended)."""
        names = {f"#h{i}": name for i, name in enumerate(HOLD) if name not in ("mode", "conversation_state")}
        values = {":into": survivor_id, ":closed": ChatMode.CLOSED.value, ":ended": ConversationState.ENDED.value}
        sets = "SET merged_into = :into, #mode = :closed, #state = :ended"
        if superseded:
            sets += ", superseded = :superseded"
            values[":superseded"] = superseded
        condition, guard_names, guard_values = _unchanged(item, "m")
        return {"Update": {
            "TableName": self.table.name, "Key": key_of(merged_id),
            "UpdateExpression": f"{sets} REMOVE last_message_at, " + ", ".join(names),
            "ConditionExpression": f"{_EXISTS} AND attribute_not_exists(merged_into) AND {condition}",
            "ExpressionAttributeNames": names | guard_names | {"#mode": "mode", "#state": "conversation_state"},
            "ExpressionAttributeValues": values | guard_values,
        }}

    def take_superseded(self, merged_id: str) -> bool:
        """The superseded hold on a merged chat is being ended: True for the one caller that takes it
        (it frees the hold's agents, so they are freed once)."""
        return self._remove_returning(merged_id, "superseded", "attribute_exists(superseded)", None) is not None

    def import_legacy(self, chat_id: str, phone_number_id: str, legacy: dict) -> bool:
        """A chat of a deployment that keyed chats by phone number, re-keyed by its customer's id
        (coexist.legacy_chats): its times, mode and the people's facts of its last conversation;
        never a running conversation (its workflow named the old chat), so it arrives closed to
        the workflow. Written once: False when the chat exists already."""
        kept = {name: legacy[name] for name in LEGACY_KEPT if legacy.get(name) is not None}
        if kept.get("mode") not in {m.value for m in ChatMode}:
            kept.pop("mode", None)
        item = {**kept, "chat_id": chat_id, "phone_number_id": phone_number_id,
                "conversation_state": ConversationState.ENDED.value, "imported_from_phone_key": True}
        return put_if_absent(self.table, item, "chat_id")

    def note_entry_point_reply(self, chat_id: str, at: int) -> bool:
        """Our reply to an ad referral within 24 h opens the free entry point; the first reply to each
        referral counts (a later referral can be answered again)."""
        return update_if(
            self.table, Key=key_of(chat_id),
            UpdateExpression="SET entry_point_replied_at = :at",
            ConditionExpression="referral_at <= :at AND referral_at >= :earliest AND "
            "(attribute_not_exists(entry_point_replied_at) OR entry_point_replied_at < referral_at)",
            ExpressionAttributeValues={":at": at, ":earliest": at - ENTRY_POINT_REPLY_S},
        )

    # --- the conversation's life --------------------------------------------------------------------
    def add_pending(self, chat_id: str, message_id: str, carried: dict | None = None) -> bool:
        """Queue a customer message for the bot (a set: a retried signal adds it once). `carried`:
        what the bot needs of it (type, text, timestamp, the reply tapped), kept beside the id so
        that the turn need not read the message; a text over `CARRIED_TEXT_MAX_BYTES` is not.
        False: the chat is gone (erased)."""
        update, values = _queued(message_id, carried)
        try:
            self.table.update_item(
                Key=key_of(chat_id), UpdateExpression=update,
                # Once per message: a retried signal finds it there.
                ConditionExpression=f"{_EXISTS} AND NOT contains(pending_messages, :id)",
                ExpressionAttributeValues=values, ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            return refused_item(error) is not None  # queued before (True), or the chat is gone
        return True

    def take_pending(self, chat_id: str) -> list[str]:
        old = self._remove_returning(chat_id, f"pending_messages, {PENDING_INPUTS}", _EXISTS, None)
        return sorted((old or {}).get("pending_messages", set()))

    def claim(self, chat_id: str, conversation_id: str, message_id: str | None = None, carried: dict | None = None) -> bool:
        """Start a conversation on a chat that has no live one; the last one's traces go. With
        `message_id`, the message that starts it is queued for the bot in the same write (as
        `add_pending` would); refused, nothing is written."""
        update = "SET conversation_id = :c, conversation_state = :live, conversation_started_at = :now"
        values: dict = {}
        if message_id is not None:
            update, values = _queued(message_id, carried, also_set=update.removeprefix("SET "))
            del values[":id"]  # only the conditions of the other queueing writes name it
        return update_if(
            self.table,
            Key=key_of(chat_id),
            UpdateExpression=update + " REMOVE " + ", ".join(PER_CONVERSATION),
            ConditionExpression=f"{_EXISTS} AND (attribute_not_exists(conversation_state) OR conversation_state = :ended)",
            ExpressionAttributeValues=values | {":c": conversation_id, ":live": ConversationState.LIVE.value,
                                                ":ended": ConversationState.ENDED.value, ":now": int(self.clock())},
        )

    def begin(self, chat_id: str) -> bool:
        return self._move(chat_id, ChatEvent.BEGIN)

    def record_bot_turn(self, chat_id: str, failures: int, session: dict, intent: str | None) -> None:
        self._set(chat_id, _turn_sets(failures, session, intent))

    def end_bot_turn(self, chat_id: str, token: str, failures: int, session: dict, intent: str | None) -> bool:
        """The bot's turn leaves the loop (it escalated or resolved): its outcome recorded and its
        token taken, in one write. False: a person took the chat, and the token with it."""
        values: dict = {}
        condition = _names_token("bot_token", token, self.tokens.reference(token), values)
        return self._set(chat_id, _turn_sets(failures, session, intent), remove=("bot_token",), condition=condition, values=values)

    def take_over(self, chat_id: str, by_agent: str | None = None) -> bool:
        """A person answered: the phone app (`by_agent` None) or an agent of the inbox."""
        sets = {"takeover_by": (Takeover.AGENT if by_agent else Takeover.APP).value, "takeover_at": int(self.clock())}
        if by_agent:
            return self._move(chat_id, ChatEvent.AGENT_REPLIED, {**sets, "assignee": by_agent})
        return self._move(chat_id, ChatEvent.PHONE_APP_REPLIED, sets)

    def confirm_agent_takeover(self, chat_id: str) -> bool:
        """The workflow learned an agent took over: the handling starts now."""
        return self._move(chat_id, ChatEvent.AGENT_REPLIED, {"assigned_at": int(self.clock())})

    def resume_bot(self, chat_id: str) -> bool:
        return self._move(chat_id, ChatEvent.BOT_RESUMED)

    def note_first_human_reply(self, chat_id: str) -> None:
        """The first-response time is set once per conversation."""
        self._set_once(chat_id, "first_human_reply_at", int(self.clock()))

    # --- routing to people ----------------------------------------------------------------------------
    def queue(self, chat_id: str) -> bool:
        """Escalated, released or transferred: wait for an agent (a transfer's target stays for routing).
        Refused for an agent's takeover the workflow has not confirmed yet (an agent who answered as
        the bot escalated keeps the chat, as the phone app does: `QUEUED` is not allowed from `app`)."""
        return self._move(chat_id, ChatEvent.QUEUED, {"queued_at": int(self.clock())},
                          remove=("assignee", "offered_to", "transfer_to", "transfer_skill"),
                          condition="NOT (#mode = :agent AND takeover_by = :by_agent AND attribute_not_exists(assigned_at))",
                          values={":agent": ChatMode.AGENT.value, ":by_agent": Takeover.AGENT.value})

    def request_transfer(self, chat_id: str, to_agent: str | None, skill: str | None) -> None:
        self._set(chat_id, {"transfer_to": to_agent, "transfer_skill": skill})

    def offer(self, chat_id: str, conversation_id: str, agent_id: str, token: str) -> bool:
        """Offer the chat to an agent: its acceptance (or refusal) wakes the workflow."""
        return self.park_token(chat_id, conversation_id, WaitingFor.ACCEPT, token, offered_to=agent_id)

    def withdraw_offer(self, chat_id: str) -> None:
        self._set(chat_id, {}, remove=("offered_to",))

    def hand_to_agent(self, chat_id: str, agent_id: str) -> bool:
        """The offered agent accepted."""
        return self._move(chat_id, ChatEvent.ACCEPTED, {"assignee": agent_id, "assigned_at": int(self.clock())},
                          remove=("offered_to",))

    def pick_up(self, chat_id: str, agent_id: str) -> bool:
        """An agent takes a chat routing gave up on (no conversation is live)."""
        return self._move(chat_id, ChatEvent.PICKED_UP, {"assignee": agent_id, "assigned_at": int(self.clock())},
                          remove=("offered_to",), condition="(attribute_not_exists(conversation_state) OR conversation_state <> :live_state)",
                          values={":live_state": ConversationState.LIVE.value})

    def give_up(self, chat_id: str) -> bool:
        """Nobody accepted: the chat waits in the queue and the conversation ends."""
        return self._move(chat_id, ChatEvent.NOBODY_ACCEPTED,
                          {"unassigned_at": int(self.clock()), "conversation_state": ConversationState.ENDED.value},
                          remove=("offered_to",))

    def note_window_warning(self, chat_id: str, due_from: int, template: str | None = None) -> bool:
        """The agent is told the window closes soon: once per window (a warning noted at or after
        `due_from`, this window's warning time, is this window's). False: already told."""
        return self._set(chat_id, {"window_warning_at": int(self.clock()), "window_warning_template": template},
                         condition="attribute_not_exists(#window_warning_at) OR #window_warning_at < :due_from",
                         values={":due_from": due_from})

    # --- the end ----------------------------------------------------------------------------------------
    def end(self, chat_id: str, survey_until: int | None = None, condition: str | None = None, values: dict | None = None) -> bool:
        """The workflow ends the conversation (closed, or a timeout). `survey_until`: the survey was
        asked, and the customer's messages until then answer it (`answer_survey`). A token still
        parked goes: its wait ended with the conversation (an agent's idle timeout leaves one)."""
        sets = {"closed_at": int(self.clock()), "conversation_state": ConversationState.ENDED.value}
        remove: tuple[str, ...] = ("offered_to", "workflow_token", "token_heartbeat")
        if survey_until is not None:
            sets |= {"waiting_for": WaitingFor.SURVEY.value, "survey_until": survey_until}
        else:
            remove += ("waiting_for",)
        return self._move(chat_id, ChatEvent.ENDED, sets, remove=remove, condition=condition, values=values)

    def end_quiet_bot_phase(self, chat_id: str, token: str, quiet_since: int) -> bool:
        """A bot phase's idle timeout: the conversation ends, without a survey, and the wait `token`
        left for the customer goes with it, in one write, on the condition that the bot still waits
        for the customer on that token and the customer has written nothing after `quiet_since`.
        False: a message came meanwhile (a turn holds the token, or it waits again), or the
        conversation moved on (a person, an escalation, a merge)."""
        values = {":customer": WaitingFor.CUSTOMER.value, ":since": quiet_since}
        holds = _names_token("workflow_token", token, self.tokens.reference(token), values)
        return self.end(chat_id, condition=f"waiting_for = :customer AND {holds} AND "
                        "(attribute_not_exists(last_customer_message_at) OR last_customer_message_at <= :since)", values=values)

    def close(self, chat_id: str) -> bool:
        """An agent closes a chat no live conversation holds."""
        return self._move(chat_id, ChatEvent.CLOSED_BY_AGENT, {"closed_at": int(self.clock())}, remove=("assignee",),
                          condition="(attribute_not_exists(conversation_state) OR conversation_state <> :live_state)",
                          values={":live_state": ConversationState.LIVE.value})

    def note_reminder(self, chat_id: str, context: dict) -> None:
        """The customer asked to reschedule a reminder: what it was, for whoever answers next."""
        self._set(chat_id, {"reminder_context": context})

    def record_score(self, chat_id: str, score: int) -> None:
        self._scored(chat_id, {"satisfaction_score": score, "satisfaction_at": int(self.clock())})

    def _scored(self, chat_id: str, sets: dict, remove: tuple[str, ...] = (), condition: str | None = None,
                values: dict | None = None) -> bool:
        """Write a survey's score (with whatever else `sets` holds), telling the observer."""
        if self.observer is None:
            return self._set(chat_id, sets, remove, condition, values)
        before = self._set_returning_old(chat_id, sets, remove, condition, values)
        if before is None:
            return False
        if "satisfaction_score" in sets:
            self._tell(SATISFACTION_RECORDED, before, sets)
        return True

    def answer_survey(self, chat_id: str, score: int | None, sent_at: int | None = None) -> bool:
        """The customer's message, sent at `sent_at` (Meta's time; a late webhook is judged by it,
        not by its arrival), answers the survey if it was asked and its time had not passed: the wait
        ends (whatever the message) and a tapped score is recorded, in one write; a message without a
        score then goes on as a message (`Signals.customer_wrote`). False: no survey waits for an
        answer (none asked, already answered, past its deadline), and the message is a message like
        any other."""
        now = int(self.clock())
        sets = {"satisfaction_score": score, "satisfaction_at": now} if score is not None else {}
        return self._scored(chat_id, sets, remove=("waiting_for", "survey_until"),
                            condition="waiting_for = :survey AND survey_until >= :sent AND attribute_not_exists(workflow_token)",
                            values={":survey": WaitingFor.SURVEY.value, ":sent": now if sent_at is None else sent_at})

    # --- the workflow's tokens ----------------------------------------------------------------------------
    def park_token(self, chat_id: str, conversation_id: str, waiting_for: WaitingFor, token: str,
                   unless_pending: bool = False, offered_to: str | None = None) -> bool:
        """Leave the execution's token for whoever has the awaited news.

        `unless_pending`: refuse (return False) when customer messages are already waiting.
        """
        condition = "conversation_id = :c"
        values = {":c": conversation_id, ":t": self.tokens.keep(token), ":w": waiting_for.value}
        sets = ["workflow_token = :t", "waiting_for = :w"]
        if unless_pending:
            condition += " AND (attribute_not_exists(pending_messages) OR size(pending_messages) = :zero)"
            values[":zero"] = 0
        if offered_to is not None:
            sets.append("offered_to = :offered")
            values[":offered"] = offered_to
        return update_if(self.table, Key=key_of(chat_id), UpdateExpression="SET " + ", ".join(sets),
                         ConditionExpression=condition, ExpressionAttributeValues=values)

    def take_token(self, chat_id: str, waiting_for: WaitingFor, offered_to: str | None = None,
                   assignee: str | None = None) -> str | None:
        """The parked token if the workflow waits for this, removed so nobody signals it twice."""
        return self.tokens.resolve((self._take_parked(chat_id, waiting_for, offered_to, assignee) or {}).get("workflow_token"))

    def _take_parked(self, chat_id: str, waiting_for: WaitingFor, offered_to: str | None = None,
                     assignee: str | None = None) -> dict | None:
        """The chat as it was when its parked token (and how the token is woken) was removed; None
        when the workflow does not wait for this."""
        condition = "waiting_for = :w AND attribute_exists(workflow_token)"
        values: dict = {":w": waiting_for.value}
        for name, value in (("offered_to", offered_to), ("assignee", assignee)):
            if value is not None:
                condition += f" AND {name} = :{name}"
                values[f":{name}"] = value
        return self._remove_returning(chat_id, "workflow_token, waiting_for, token_heartbeat", condition, values)

    def queue_taking_customer_wait(self, chat_id: str, message_id: str, carried: dict | None = None) -> "CustomerWait | None":
        """`add_pending` and `take_customer_wait` in one write, for a chat whose workflow waits for
        the customer: the message queued for the bot and the parked token taken. None (nothing
        written) when no token is parked for the customer, or the message was queued before: the
        caller then does the two apart, as for a chat whose bot is busy."""
        update, values = _queued(message_id, carried)
        values[":customer"] = WaitingFor.CUSTOMER.value
        try:
            old = self.table.update_item(
                Key=key_of(chat_id), UpdateExpression=update + " REMOVE workflow_token, waiting_for, token_heartbeat",
                ConditionExpression=f"{_EXISTS} AND waiting_for = :customer AND attribute_exists(workflow_token) "
                "AND NOT contains(pending_messages, :id)",
                ExpressionAttributeValues=values, ReturnValues="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return CustomerWait.taken_from(old, self.tokens.resolve)

    def park_customer_wait(self, chat_id: str, conversation_id: str, wait: "CustomerWait") -> bool:
        """Put back a heartbeat-timed token taken for a turn that could not be started (a retry
        takes it again); refused when the chat moved on meanwhile (a person took it, a turn runs)."""
        return self._set(chat_id, {"workflow_token": self.tokens.keep(wait.token), "waiting_for": WaitingFor.CUSTOMER.value,
                                   "token_heartbeat": int(wait.heartbeat)},
                         condition="conversation_id = :c AND attribute_not_exists(workflow_token) AND "
                         "attribute_not_exists(bot_token) AND #mode = :bot",
                         values={":c": conversation_id, ":bot": ChatMode.BOT.value})

    def take_customer_wait(self, chat_id: str) -> "CustomerWait | None":
        """The token parked for the customer's next message, removed so nobody signals it twice,
        with how it is woken (`CustomerWait.heartbeat`)."""
        old = self._take_parked(chat_id, WaitingFor.CUSTOMER)
        return CustomerWait.taken_from(old, self.tokens.resolve) if old else None

    def start_bot_turn(self, chat_id: str, conversation_id: str, token: str,
                       turn: str | None = None) -> tuple[Chat, list[WaitingMessage]] | None:
        """A bot turn begins: its token parked on the chat (whoever takes over fails it) and the
        customer messages waiting for the bot taken, in one write that returns the chat as it was.
        None: this chat does not hold the conversation (a merge carried it on, or the chat is gone).

        `turn`: the invocation's own id (BotLoop's turns; Lambda's retries of an invocation keep it).
        Such a turn starts only while no other invocation's turn holds the token and the token does
        not already wait for the customer; otherwise it is a second delivery of a turn that is under
        way or over, and `DuplicateTurn` says so without taking anything."""
        sets, values = "SET bot_token = :t", {":t": self.tokens.keep(token), ":c": conversation_id}
        condition = f"{_EXISTS} AND conversation_id = :c"
        if turn is not None:
            sets += ", bot_turn = :turn"
            values[":turn"] = turn
            condition += (" AND (attribute_not_exists(bot_token) OR attribute_not_exists(bot_turn) OR bot_turn = :turn)"
                          f" AND NOT ({_names_token('workflow_token', token, values[':t'], values)})")
        try:
            old = self.table.update_item(
                Key=key_of(chat_id), UpdateExpression=f"{sets} REMOVE pending_messages, {PENDING_INPUTS}",
                ConditionExpression=condition, ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            held = refused_item(error) or {}
            if turn is not None and held.get("conversation_id") == conversation_id:
                raise DuplicateTurn(chat_id) from None
            return None
        carried = {copy["id"]: copy for copy in from_item_value(old.get(PENDING_INPUTS) or [])}
        return chat_from_item(old), [WaitingMessage(i, carried.get(i)) for i in sorted(old.get("pending_messages", set()))]

    def hold_lost_turn(self, chat_id: str, conversation_id: str, token: str) -> Chat | None:
        """A live bot phase whose token is nowhere (no turn holds it, nothing waits on the chat): the
        token held under a turn id no invocation has (`LOST_TURN`), in one write conditioned on
        exactly that, so a turn still on its way finds it held and leaves (`DuplicateTurn`). The chat
        as it was; None when the token turned up after all (a turn started) or the conversation moved on."""
        old = self._set_returning_old(
            chat_id, {"bot_token": self.tokens.keep(token), "bot_turn": LOST_TURN},
            condition="conversation_id = :c AND conversation_state = :live AND "
            "attribute_not_exists(bot_token) AND attribute_not_exists(workflow_token)",
            values={":c": conversation_id, ":live": ConversationState.LIVE.value})
        return None if old is None else chat_from_item(old)

    def take_bot_token(self, chat_id: str, expected: str | None = None) -> str | None:
        """The running turn's token, removed (a person takes over, or the turn ends); `expected`: only
        if the chat holds that token."""
        if expected:
            values: dict = {}
            holds = _names_token("bot_token", expected, self.tokens.reference(expected), values)
            taken = self._remove_returning(chat_id, "bot_token", holds, values)
            return expected if taken else None
        old = self._remove_returning(chat_id, "bot_token", "attribute_exists(bot_token)", None)
        return self.tokens.resolve((old or {}).get("bot_token"))

    def await_customer(self, chat_id: str, conversation_id: str, token: str, failures: int | None = None,
                       session: dict | None = None, intent: str | None = None, heartbeat: Heartbeats = Heartbeats.NONE) -> bool:
        """The bot's turn is over (its outcome recorded in the same write, when it ran): the turn's
        token now waits for the customer's next message. Refused (False) when customer messages came
        meanwhile, when a person took the token, or when the conversation is no longer here.
        `heartbeat`: the token's wait is timed by heartbeats (Chat.token_heartbeat)."""
        stored = self.tokens.keep(token)
        sets: dict = {"workflow_token": stored, "waiting_for": WaitingFor.CUSTOMER.value}
        if heartbeat:
            sets["token_heartbeat"] = int(heartbeat)
        if failures is not None:
            sets |= _turn_sets(failures, session or {}, intent)
        values: dict = {":c": conversation_id, ":zero": 0}
        holds = _names_token("bot_token", token, stored, values)
        return self._set(chat_id, sets, remove=("bot_token",) + (() if heartbeat else ("token_heartbeat",)),
                         condition=f"conversation_id = :c AND {holds} AND "
                         "(attribute_not_exists(pending_messages) OR size(pending_messages) = :zero)",
                         values=values)

    def bot_reply(self, chat_id: str, hold: "BotHold", at: int) -> "BotReplyWrite":
        """The chat's part of storing a bot's reply sent at `at`, written with the message in one
        transaction (`MessageStore.create_outbound_along`) while `hold` still holds the chat."""
        return BotReplyWrite(self.table.name, chat_id, hold, at, self.tokens.keep(hold.token))

    # --- Amazon Connect -----------------------------------------------------------------------------------
    def map_contact(self, contact_id: str, chat_id: str, conversation_id: str) -> None:
        self.table.put_item(Item={**self._contact_key(contact_id), "contact_of": chat_id,
                                  "conversation_id": conversation_id, "created_at": int(self.clock())})

    def chat_of_contact(self, contact_id: str) -> str | None:
        item = self.table.get_item(Key=self._contact_key(contact_id), ConsistentRead=True).get("Item")
        return (item or {}).get("contact_of")

    @staticmethod
    def _contact_key(contact_id: str) -> dict:
        return {"chat_id": CONTACT_MAP_PREFIX + contact_id}

    def hand_to_connect(self, chat_id: str, contact_id: str, instance_id: str, conversation_id: str,
                        handoff_key: str, participant_token: str) -> bool:
        return self._move(chat_id, ChatEvent.HANDED_TO_CONNECT, {
            "connect_contact_id": contact_id, "connect_instance_id": instance_id,
            "connect_conversation_id": conversation_id, "connect_handoff_key": handoff_key,
            "handed_to_connect_at": int(self.clock()), "connect_participant_token": participant_token,
        }, remove=("connect_ended_at", "connect_agent_left_at", "connect_connection_token", "connect_connection_expires_at"))

    def connect_failed(self, chat_id: str) -> bool:
        """The handoff failed: back to the built-in queue, keeping only the handoff key (retries)."""
        return self._move(chat_id, ChatEvent.CONNECT_FAILED, {},
                          remove=tuple(f for f in CONNECT_FIELDS if f != "connect_handoff_key"))

    def store_connection(self, chat_id: str, token: str, expires_at: int) -> None:
        self._set(chat_id, {"connect_connection_token": token, "connect_connection_expires_at": expires_at})

    def note_connect_ended(self, chat_id: str) -> None:
        self._set_once(chat_id, "connect_ended_at", int(self.clock()))

    def note_connect_agent_left(self, chat_id: str) -> None:
        self._set(chat_id, {"connect_agent_left_at": int(self.clock())})

    def leave_connect(self, chat_id: str, ended_at: int | None) -> None:
        """The contact is over for us: keep when it ended, drop the credentials."""
        self._set(chat_id, {"connect_ended_at": ended_at or int(self.clock())}, remove=CONNECT_CREDENTIALS)

    # --- writing ----------------------------------------------------------------------------------------
    def _move(self, chat_id: str, event: ChatEvent, sets: dict | None = None, remove: tuple[str, ...] = (),
              condition: str | None = None, values: dict | None = None) -> bool:
        """Apply `event` if the chat is in a mode it may move from (a missing mode reads as closed)."""
        sources, target = RULES[event]
        sets = {**(sets or {}), "mode": target.value}
        # A closed chat waits in the retention index from now on; any other move takes it out
        # (coexist.retention): an open chat's messages never expire.
        if target == ChatMode.CLOSED:
            sets.update(retention_keys(chat_id, int(self.clock())))
            remove = (*remove, PENDING_INPUTS)  # no copy of a customer's words outlives its conversation
        else:
            remove = (*remove, *RETENTION_KEYS)
        extra_values = dict(values or {})
        conditions = []  # `_update` adds that the chat exists
        if sources != frozenset(ChatMode):
            modes = sorted(m.value for m in sources)
            placeholders = [f":from{i}" for i in range(len(modes))]
            extra_values.update(zip(placeholders, modes))
            allowed = f"#mode IN ({', '.join(placeholders)})"
            if ChatMode.CLOSED in allowed_from(event):
                allowed = f"(attribute_not_exists(#mode) OR {allowed})"
            conditions.append(allowed)
        if condition:
            conditions.append(condition)
        joined = " AND ".join(conditions) or None
        if self.observer is None:
            return self._set(chat_id, sets, remove, joined, extra_values)
        before = self._set_returning_old(chat_id, sets, remove, joined, extra_values)
        if before is None:
            return False
        self._tell(event, before, sets)
        return True

    def _set_returning_old(self, chat_id: str, sets: dict, remove: tuple[str, ...] = (), condition: str | None = None,
                           values: dict | None = None) -> dict | None:
        """`_set`, answering the item as it was before the write (None: the condition failed)."""
        try:
            answer = self.table.update_item(**self._update(chat_id, sets, remove, condition, values), ReturnValues="ALL_OLD")
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return answer.get("Attributes") or {}

    def _tell(self, event, before_item: dict, sets: dict) -> None:
        try:
            self.observer(event, chat_from_item(before_item), sets)
        except Exception:  # noqa: BLE001 - reporting a change never fails the change
            log.exception("chat change observer failed")

    def _set(self, chat_id: str, sets: dict, remove: tuple[str, ...] = (), condition: str | None = None,
             values: dict | None = None) -> bool:
        if not sets and not remove:
            return True
        return update_if(self.table, **self._update(chat_id, sets, remove, condition, values))

    @staticmethod
    def _update(chat_id: str, sets: dict, remove: tuple[str, ...] = (), condition: str | None = None,
                values: dict | None = None) -> dict:
        """UpdateItem's arguments for setting and removing these attributes under `condition`."""
        names = {f"#{k}": k for k in (*sets, *remove)} | {"#mode": "mode"}
        expression = ""
        if sets:
            expression += "SET " + ", ".join(f"#{k} = :{k}" for k in sets)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        attribute_values = {f":{k}": to_item_value(v) for k, v in sets.items()} | dict(values or {})
        # Only the writes that carry the chat's number create it (`record_activity`, `record_identity`):
        # any other write to a chat that is gone (erased) is refused rather than leaving a remnant.
        condition = f"{_EXISTS} AND {_grouped(condition)}" if condition else _EXISTS
        kwargs: dict = {"Key": key_of(chat_id), "UpdateExpression": expression.strip(), "ConditionExpression": condition}
        # DynamoDB refuses a name the expressions do not use; match whole placeholders, since
        # `#mode` is a prefix of `#mode_since`.
        used = set(_PLACEHOLDER.findall(f"{expression} {condition or ''}"))
        kwargs["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in used}
        if attribute_values:
            kwargs["ExpressionAttributeValues"] = attribute_values
        return kwargs

    def _set_once(self, chat_id: str, name: str, value) -> None:
        """Record a first-time fact once (on a chat that exists)."""
        update_if(self.table, Key=key_of(chat_id), UpdateExpression="SET #n = if_not_exists(#n, :v)", ConditionExpression=_EXISTS,
                  ExpressionAttributeNames={"#n": name}, ExpressionAttributeValues={":v": to_item_value(value)})

    def _remove_returning(self, chat_id: str, attributes: str, condition: str, values: dict | None) -> dict | None:
        kwargs: dict = {"Key": key_of(chat_id), "UpdateExpression": f"REMOVE {attributes}",
                        "ConditionExpression": condition, "ReturnValues": "ALL_OLD"}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            return self.table.update_item(**kwargs)["Attributes"]
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
