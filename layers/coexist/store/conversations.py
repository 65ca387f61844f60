"""The conversation workflow's state, kept on the chat item.

Each wait of the workflow parks a task token on the chat (`workflow_token` + `waiting_for`);
whoever has the awaited news (ingest, the agent API) takes the token atomically and signals the
execution. Taking is conditional, so a token is signalled once even when two signals race.
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from coexist.domain.records import split_chat_id
from coexist.store.conditional import is_condition_failure, update_if
from coexist.store.items import to_item_value

LIVE, ENDED = "live", "ended"
# What one conversation leaves on the chat; a new conversation starts without it (its first-response
# time, survey score, bot memory… are its own).
PER_CONVERSATION = (
    "workflow_token", "waiting_for", "bot_token", "offered_to", "queued_at", "assigned_at", "first_human_reply_at",
    "closed_at", "satisfaction_score", "satisfaction_at", "takeover_by", "takeover_at", "window_warning_at",
    "unassigned_at", "bot_intent", "bot_failures", "bot_session", "transfer_to", "transfer_skill",
)


def chat_key(chat_id: str) -> dict:
    number, wa_id = split_chat_id(chat_id) or ("", "")
    return {"phone_number_id": number, "wa_id": wa_id}


class ConversationStore:
    def __init__(self, chats_table):
        self.table = chats_table

    def get(self, chat_id: str) -> dict | None:
        return self.table.get_item(Key=chat_key(chat_id), ConsistentRead=True).get("Item")

    def add_pending(self, chat_id: str, message_id: str) -> dict:
        """Queue a customer message for the bot (a set: a retried signal adds it once)."""
        return self.table.update_item(
            Key=chat_key(chat_id),
            UpdateExpression="ADD pending_messages :id",
            ExpressionAttributeValues={":id": {message_id}},
            ReturnValues="ALL_NEW",
        )["Attributes"]

    def take_pending(self, chat_id: str) -> list[str]:
        old = self.table.update_item(Key=chat_key(chat_id), UpdateExpression="REMOVE pending_messages", ReturnValues="ALL_OLD")
        return sorted((old.get("Attributes") or {}).get("pending_messages", set()))

    def claim(self, chat_id: str, conversation_id: str) -> bool:
        """Start a conversation on a chat that has no live one."""
        return update_if(
            self.table,
            Key=chat_key(chat_id),
            UpdateExpression="SET conversation_id = :c, conversation_state = :live, conversation_started_at = :now "
            "REMOVE " + ", ".join(PER_CONVERSATION),
            ConditionExpression="attribute_not_exists(conversation_state) OR conversation_state = :ended",
            ExpressionAttributeValues={":c": conversation_id, ":live": LIVE, ":ended": ENDED, ":now": int(time.time())},
        )

    def park_token(self, chat_id: str, conversation_id: str, waiting_for: str, token: str, unless_pending: bool = False, **fields) -> bool:
        """Leave the execution's token for whoever has the awaited news.

        `unless_pending`: refuse (return False) when customer messages are already waiting.
        """
        condition = "conversation_id = :c"
        if unless_pending:
            condition += " AND (attribute_not_exists(pending_messages) OR size(pending_messages) = :zero)"
        values = {":c": conversation_id, ":t": token, ":w": waiting_for, **{f":{k}": to_item_value(v) for k, v in fields.items()}}
        if unless_pending:
            values[":zero"] = 0
        sets = ["workflow_token = :t", "waiting_for = :w"] + [f"{k} = :{k}" for k in fields]
        return update_if(
            self.table,
            Key=chat_key(chat_id),
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )

    def take_token(self, chat_id: str, waiting_for: str, **must_match) -> str | None:
        """The parked token if the workflow waits for this, removed so nobody signals it twice."""
        condition = "waiting_for = :w AND attribute_exists(workflow_token)"
        values: dict = {":w": waiting_for}
        for name, value in must_match.items():
            condition += f" AND {name} = :{name}"
            values[f":{name}"] = value
        try:
            old = self.table.update_item(
                Key=chat_key(chat_id),
                UpdateExpression="REMOVE workflow_token, waiting_for",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )["Attributes"]
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return old.get("workflow_token")

    def set_bot_token(self, chat_id: str, conversation_id: str, token: str) -> bool:
        return update_if(
            self.table,
            Key=chat_key(chat_id),
            UpdateExpression="SET bot_token = :t",
            ConditionExpression="conversation_id = :c",
            ExpressionAttributeValues={":t": token, ":c": conversation_id},
        )

    def take_bot_token(self, chat_id: str, expected: str | None = None) -> str | None:
        kwargs: dict = {"ConditionExpression": "attribute_exists(bot_token)"}
        if expected:
            kwargs = {"ConditionExpression": "bot_token = :t", "ExpressionAttributeValues": {":t": expected}}
        try:
            old = self.table.update_item(Key=chat_key(chat_id), UpdateExpression="REMOVE bot_token", ReturnValues="ALL_OLD", **kwargs)
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return old["Attributes"].get("bot_token")

    def bot_in_charge(self, chat_id: str, token: str) -> bool:
        chat = self.get(chat_id) or {}
        return chat.get("bot_token") == token and chat.get("mode") == "bot"

    def update(self, chat_id: str, remove: tuple[str, ...] = (), **fields) -> dict:
        names = {f"#{k}": k for k in fields} | {f"#{k}": k for k in remove}
        expression = ""
        if fields:
            expression += "SET " + ", ".join(f"#{k} = :{k}" for k in fields)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        kwargs: dict = {"Key": chat_key(chat_id), "UpdateExpression": expression.strip(), "ExpressionAttributeNames": names, "ReturnValues": "ALL_NEW"}
        if fields:
            kwargs["ExpressionAttributeValues"] = {f":{k}": to_item_value(v) for k, v in fields.items()}
        return self.table.update_item(**kwargs)["Attributes"]

    def set_if_absent(self, chat_id: str, name: str, value) -> None:
        """Record a first-time fact (e.g. the first human reply) once."""
        self.table.update_item(
            Key=chat_key(chat_id),
            UpdateExpression="SET #n = if_not_exists(#n, :v)",
            ExpressionAttributeNames={"#n": name},
            ExpressionAttributeValues={":v": to_item_value(value)},
        )
