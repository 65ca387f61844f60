"""Messages, keyed by id (the wamid), listed per chat through the `by_chat` index.

A message item may exist before the message itself is known: a status, an edit or history media
can arrive first. Such an item lacks `recorded_at` until the message is recorded; recording then
fills it in without overwriting what the earlier arrivals set (`if_not_exists`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

from coexist.domain import delivery
from coexist.domain.send_errors import RETRIES_EXHAUSTED
from coexist.domain.records import (
    OUTBOUND,
    UNKNOWN_SENDER,
    Source,
    MessageEdit,
    MessageRecord,
    MessageRevoke,
    StatusUpdate,
)
from botocore.exceptions import ClientError

from coexist.store.conditional import as_stored, is_condition_failure, put_if_absent, refused_item, update_if
from coexist.store.items import from_item_value, to_item_value
from coexist.store.queries import batch_get, index_page

BY_CHAT = "by_chat"
# The sparse index of messages not yet handed to Meta (coexist.resources.MESSAGES declares it): its
# key attributes exist only while a message is `queued` or `sending`, so the index holds those alone.
UNSENT = "unsent"
UNSENT_SHARD = "unsent_shard"
UNSENT_SINCE = "unsent_since_ms"
UNSENT_SHARDS = 8  # index partitions, so a busy sender's writes never crowd one partition key
SENDING = "sending"  # Meta is being called; see coexist.outbound.sender for an attempt that died there
OUTBOUND_ID_PREFIX = "out."
# How far back a status without callback data looks for our message in its chat (newest first).
SENT_AS_LOOKBACK = 50


def unsent_shard(message_id: str) -> str:
    return str(int(hashlib.sha256(message_id.encode()).hexdigest()[:8], 16) % UNSENT_SHARDS)


@dataclass(frozen=True)
class OutboundMessage:
    """A message the business sends, as accepted (policy passed), before the sender takes it."""

    id: str
    chat_id: str  # the customer's opaque chat id
    phone_number_id: str
    wa_id: str | None  # the customer's phone number, when Meta shared it
    source: str  # agent | bot | campaign | api
    type: str
    text: str | None
    content: dict  # the Graph API object of its type, as the chat shows it
    request: dict  # the send request as given, re-read by the sender
    queued_at: float  # epoch seconds, with the milliseconds that order a chat's messages
    template_category: str | None = None
    sent_by: str | None = None
    idempotency_key: str | None = None
    user_id: str | None = None  # the customer's BSUID, when known
    purpose: str | None = None  # the consent purpose the send relies on (e.g. reminders)
    campaign_id: str | None = None  # sent by this campaign (its progress counts the message's statuses)


def _outbound_item(message: OutboundMessage) -> dict:
    seconds, millis = int(message.queued_at), int(message.queued_at * 1000)
    item = {
        "id": message.id,
        "chat_id": message.chat_id,
        "position": position(seconds, message.id, millis % 1000),
        "phone_number_id": message.phone_number_id,
        "wa_id": message.wa_id,
        "user_id": message.user_id,
        "direction": OUTBOUND,
        "source": message.source,
        "type": message.type,
        "text": message.text,
        "content": to_item_value(message.content),
        "request": to_item_value(message.request),
        "timestamp": seconds,
        "queued_at_ms": millis,
        "recorded_at": seconds,
        "status": "queued",
        "status_rank": delivery.rank("queued"),
        UNSENT_SHARD: unsent_shard(message.id),
        UNSENT_SINCE: millis,
        "template_category": message.template_category,
        "sent_by": message.sent_by,
        "idempotency_key": message.idempotency_key[:200] if message.idempotency_key else None,
        "purpose": message.purpose,
        "campaign_id": message.campaign_id,
    }
    return {k: v for k, v in item.items() if v is not None}


def position(timestamp: int, message_id: str, millis: int = 0) -> str:
    """Sort key within a chat: time order, ties broken by id so the key is unique.

    Meta's timestamps are whole seconds; our own sends carry milliseconds so that two messages the
    bot sends in the same second (an answer, then the survey) keep their order.
    """
    return f"{timestamp:011d}.{millis:03d}#{message_id}"


# A bot reply's transaction tried again when its chat changed meanwhile (each time narrowed to what
# still applies) or a concurrent transaction touched either item.
ALONG_ATTEMPTS = 4


class MessageExists(Exception):
    """A message meant to be new was found stored: its id was not new."""


class MessageStore:
    def __init__(self, table, progress=None):
        self.table = table
        # Told of each status a message of a campaign reaches (store/campaigns.CampaignStore.count_status).
        self.progress = progress

    # --- writes -----------------------------------------------------------------------------
    def record(self, message: MessageRecord) -> bool:
        """Store a message once. Returns False when it was already recorded (a duplicate)."""
        values = {
            ":chat": message.chat_id,
            ":pos": position(message.timestamp, message.id),
            ":number": message.phone_number_id,
            ":dir": message.direction,
            ":src": message.source,
            ":type": message.type,
            ":text": message.text,
            ":content": to_item_value(message.content),
            ":ts": message.timestamp,
            ":now": int(time.time()),
        }
        sets = [
            "chat_id = :chat", "#pos = :pos", "phone_number_id = :number",
            "direction = :dir", "#src = :src", "#ts = :ts", "recorded_at = :now",
            "#type = if_not_exists(#type, :type)", "#text = if_not_exists(#text, :text)",
            "content = if_not_exists(content, :content)",
        ]
        names = {"#pos": "position", "#src": "source", "#ts": "timestamp", "#type": "type", "#text": "text"}
        optional = {
            "context_id": message.context_id,
            "referral": to_item_value(message.referral),
            "inbound_errors": to_item_value(message.errors) or None,
            "history_status": message.history_status,
            "wa_id": message.wa_id,
            "user_id": message.identifiers.user_id,
        }
        for name, value in optional.items():
            if value is not None:
                sets.append(f"{name} = :{name}")
                values[f":{name}"] = value
        if message.source == Source.HISTORY:
            sets.append("is_history = :true")
            values[":true"] = True
        if message.status and delivery.rank(message.status) is not None:
            names["#status"] = "status"
            sets += ["#status = if_not_exists(#status, :status)", "status_rank = if_not_exists(status_rank, :rank)"]
            values[":status"] = message.status
            values[":rank"] = delivery.rank(message.status)
        return update_if(
            self.table,
            Key={"id": message.id},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_not_exists(recorded_at)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def import_history(self, messages: list[MessageRecord]) -> int:
        """Bulk import of history. Only messages not yet known are written, in batches.

        Messages already recorded (e.g. a live echo of the same wamid) are left untouched; items
        created ahead of their message (a status or media arrival) are completed one by one.
        Returns how many messages were written.
        """
        unique = {m.id: m for m in messages}
        existing = self._existing(list(unique))
        written = 0
        with self.table.batch_writer(overwrite_by_pkeys=["id"]) as batch:
            for message in unique.values():
                state = existing.get(message.id)
                if state is None:
                    batch.put_item(Item=self._full_item(message))
                    written += 1
        for message_id, recorded in existing.items():
            if not recorded and self.record(unique[message_id]):
                written += 1
        return written

    def _existing(self, ids: list[str]) -> dict[str, bool]:
        """Which ids already have an item, and whether that item's message was recorded."""
        items = batch_get(self.table, [{"id": i} for i in ids], projection="id, recorded_at")
        return {item["id"]: "recorded_at" in item for item in items}

    @staticmethod
    def _full_item(message: MessageRecord) -> dict:
        item = {
            "id": message.id,
            "chat_id": message.chat_id,
            "position": position(message.timestamp, message.id),
            "phone_number_id": message.phone_number_id,
            "wa_id": message.wa_id,
            "user_id": message.identifiers.user_id,
            "direction": message.direction,
            "source": message.source,
            "type": message.type,
            "text": message.text,
            "content": to_item_value(message.content),
            "timestamp": message.timestamp,
            "recorded_at": int(time.time()),
            "is_history": True,
            "history_status": message.history_status,
            "context_id": message.context_id,
        }
        if message.status and delivery.rank(message.status) is not None:
            item["status"] = message.status
            item["status_rank"] = delivery.rank(message.status)
        return {k: v for k, v in item.items() if v is not None}

    def apply_media(self, message: MessageRecord) -> None:
        """History media content replacing a `media_placeholder` (or arriving before it)."""
        names = {"#type": "type", "#text": "text"}
        values = {":type": message.type, ":content": to_item_value(message.content), ":text": message.text, ":now": int(time.time())}
        sets = ["#type = :type", "content = :content", "#text = :text", "media_arrived_at = :now"]
        if message.chat_id:
            names.update({"#pos": "position", "#src": "source", "#ts": "timestamp"})
            values.update(
                {
                    ":chat": message.chat_id, ":pos": position(message.timestamp, message.id),
                    ":number": message.phone_number_id, ":dir": message.direction,
                    ":src": message.source, ":ts": message.timestamp,
                }
            )
            sets += [
                "chat_id = if_not_exists(chat_id, :chat)", "#pos = if_not_exists(#pos, :pos)",
                "phone_number_id = if_not_exists(phone_number_id, :number)",
                "direction = if_not_exists(direction, :dir)", "#src = if_not_exists(#src, :src)",
                "#ts = if_not_exists(#ts, :ts)",
            ]
        self.table.update_item(
            Key={"id": message.id},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def apply_edit(self, edit: MessageEdit) -> None:
        """The latest edit wins, whatever order edits arrive in."""
        update_if(
            self.table,
            Key={"id": edit.original_id},
            UpdateExpression="SET #type = :type, content = :content, #text = :text, edited_at = :ts, "
            "chat_id = if_not_exists(chat_id, :chat), phone_number_id = if_not_exists(phone_number_id, :number)",
            ConditionExpression="attribute_not_exists(edited_at) OR edited_at <= :ts",
            ExpressionAttributeNames={"#type": "type", "#text": "text"},
            ExpressionAttributeValues={
                ":type": edit.type, ":content": to_item_value(edit.content), ":text": edit.text, ":ts": edit.timestamp,
                ":chat": edit.chat_id, ":number": edit.phone_number_id,
            },
        )

    def apply_revoke(self, revoke: MessageRevoke) -> None:
        self.table.update_item(
            Key={"id": revoke.original_id},
            UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :ts), "
            "chat_id = if_not_exists(chat_id, :chat), phone_number_id = if_not_exists(phone_number_id, :number)",
            ExpressionAttributeValues={
                ":ts": revoke.timestamp, ":chat": revoke.chat_id, ":number": revoke.phone_number_id,
            },
        )

    def apply_status(self, update: StatusUpdate) -> dict | None:
        """Record a delivery status; the message's status only ever moves forward (rule 4).

        A status for a message never recorded here (sent by another tool on the same number, or
        arriving before our own record) creates the item, so nothing is dropped. A status for a
        message we sent lands on our message: found by the callback data the sender attached (or,
        without it, among the chat's latest messages by its wamid), or through the link item its
        wamid points from (a status that came before the message carried the wamid).

        Returns the message it landed on, as written, so that pricing the status needs no read of
        it; None where the status took another path (adopted through a link, or late on an item of
        its own).
        """
        names = {"#at": f"{update.status}_at", "#src": "source", "#ts": "timestamp"}
        values: dict = {
            ":ts": update.timestamp, ":number": update.phone_number_id, ":out": OUTBOUND, ":unknown": UNKNOWN_SENDER,
        }
        facts = ["#at = if_not_exists(#at, :ts)", "phone_number_id = if_not_exists(phone_number_id, :number)",
                 "direction = if_not_exists(direction, :out)", "#src = if_not_exists(#src, :unknown)",
                 "#ts = if_not_exists(#ts, :ts)"]
        if update.chat_id:
            names["#pos"] = "position"
            values[":chat"] = update.chat_id
            values[":pos"] = position(update.timestamp, update.message_id)
            facts += ["chat_id = if_not_exists(chat_id, :chat)", "#pos = if_not_exists(#pos, :pos)"]
        if update.pricing:
            facts.append("pricing = :pricing")
            values[":pricing"] = to_item_value(update.pricing)
        if update.conversation:
            facts.append("conversation = :conversation")
            values[":conversation"] = to_item_value(update.conversation)
        if update.errors:
            facts.append("#errors = :errors")
            names["#errors"] = "errors"
            values[":errors"] = to_item_value(update.errors)
        not_linked = "attribute_not_exists(link_to)"
        status_rank = delivery.rank(update.status)
        if status_rank is not None and not update.callback_data and update.chat_id:
            # Without the callback data the sender attached, our message is found among the
            # chat's latest by its wamid (no link item is written per send).
            ours = self.sent_as(update.chat_id, update.message_id)
            if ours:
                update = replace(update, callback_data=ours["id"])
        if status_rank is not None:
            landed = self._status_on_our_message(update, facts, names, values, status_rank)
            if landed is not None:
                return landed
            moved = self._update_returning(
                Key={"id": update.message_id},
                UpdateExpression="SET " + ", ".join(facts + ["#status = :status", "status_rank = :rank", "status_at = :ts"]),
                ConditionExpression=f"{not_linked} AND (attribute_not_exists(status_rank) OR status_rank <= :rank)",
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues={**values, ":status": update.status, ":rank": status_rank},
            )
            if moved is not None:
                self._progressed(moved, update.status)
                # Linked to our message, the status is ours to price: the item under the wamid is not.
                return None if self.link_callback(update) else moved
        # A late status (or one this version does not rank): keep its facts, leave the status.
        recorded = update_if(
            self.table,
            Key={"id": update.message_id},
            UpdateExpression="SET " + ", ".join(facts),
            ConditionExpression=not_linked,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        if recorded:
            self.link_callback(update)
            return None
        link = self.get(update.message_id) or {}
        if link.get("link_to"):
            return self.apply_status(replace(update, message_id=link["link_to"], wa_id=None, chat_id=""))
        return None

    def sent_as(self, chat_id: str, wamid: str) -> dict | None:
        """Our message among the chat's latest that Meta accepted under this wamid, if any: how a
        status without our callback data finds it (a send writes no item under its wamid)."""
        for item in self.latest_for_chat(chat_id, SENT_AS_LOOKBACK):
            if item.get("wamid") == wamid and item["id"].startswith(OUTBOUND_ID_PREFIX):
                return item
        return None

    def _status_on_our_message(self, update: StatusUpdate, facts: list[str], names: dict, values: dict,
                               status_rank: int) -> dict | None:
        """A status of a message we sent names it in its callback data: once the message carries
        this wamid, the status lands on it in one write instead of through the wamid's link item,
        and so does a late one's facts. Anything else (not carrying this wamid yet) takes the
        general path below: None."""
        ours = update.callback_data
        if not ours or not ours.startswith(OUTBOUND_ID_PREFIX) or ours == update.message_id:
            return None
        ours_with_this_wamid = "wamid = :wamid AND phone_number_id = :number AND direction = :out"
        try:
            moved = self.table.update_item(
                Key={"id": ours},
                UpdateExpression="SET " + ", ".join(facts + ["#status = :status", "status_rank = :rank", "status_at = :ts"]),
                ConditionExpression=f"{ours_with_this_wamid} AND (attribute_not_exists(status_rank) OR status_rank <= :rank)",
                ExpressionAttributeNames={**names, "#status": "status"},
                ExpressionAttributeValues={**values, ":status": update.status, ":rank": status_rank, ":wamid": update.message_id},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",  # no read: the refusal says why
            ).get("Attributes") or {}
        except ClientError as error:
            held = refused_item(error) or {}
            # Refused with ours under this wamid: only its rank can have refused it, the status is late.
            late = (held.get("wamid"), held.get("phone_number_id"), held.get("direction")) == (
                update.message_id, update.phone_number_id, OUTBOUND)
            if not late:
                return None
            # Ours, further along already (`sent` after `read`): the late status's facts (its time,
            # Meta's pricing) land on it and its status does not, where the general path would put
            # them on an item of the wamid's own and link that back.
            return self._update_returning(
                Key={"id": ours}, UpdateExpression="SET " + ", ".join(facts), ConditionExpression=ours_with_this_wamid,
                ExpressionAttributeNames=names, ExpressionAttributeValues={**values, ":wamid": update.message_id},
            )
        self._progressed(moved, update.status)  # a campaign's message: its progress counts the status
        return moved

    def move_chat(self, from_chat: str, to_chat: str) -> int:
        """Every message of one chat moves to another (two customers merged); idempotent."""
        moved = 0
        while True:  # each round moves the page out of the index, so the next starts from the top
            items, _ = index_page(self.table, BY_CHAT, "chat_id", from_chat, 100, None, newest_first=False)
            if not items:
                return moved
            for item in items:
                moved += update_if(self.table, Key={"id": item["id"]}, UpdateExpression="SET chat_id = :to",
                                   ConditionExpression="chat_id = :from", ExpressionAttributeValues={":to": to_chat, ":from": from_chat})

    def count_in_chat(self, chat_id: str) -> int:
        """How many messages a chat has (an operator's count, e.g. before re-keying chats)."""
        count, kwargs = 0, {"IndexName": BY_CHAT, "KeyConditionExpression": "chat_id = :c",
                            "ExpressionAttributeValues": {":c": chat_id}, "Select": "COUNT"}
        while True:
            page = self.table.query(**kwargs)
            count += page["Count"]
            if "LastEvaluatedKey" not in page:
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def mark_signalled(self, message_id: str) -> None:
        """The conversation workflow has heard of this customer message."""
        self.table.update_item(Key={"id": message_id}, UpdateExpression="SET signalled_at = if_not_exists(signalled_at, :now)",
                               ExpressionAttributeValues={":now": int(time.time())})

    def was_signalled(self, message_id: str) -> bool:
        return "signalled_at" in (self.table.get_item(Key={"id": message_id}, ProjectionExpression="signalled_at").get("Item") or {})

    # --- outbound ---------------------------------------------------------------------------
    def create_outbound(self, message: OutboundMessage) -> tuple[bool, dict]:
        """Store a message to send, once per id (the idempotency key). Returns (created, item)."""
        item = _outbound_item(message)
        created = put_if_absent(self.table, item, "id")
        return created, item if created else (self.get(item["id"]) or item)

    def create_outbound_along(self, message: OutboundMessage, chat_write) -> dict | None:
        """Store a new message to send in one transaction with its chat's write (`chat_write`:
        `coexist.store.chats.BotReplyWrite`), so that the message exists only if the chat's condition
        held. A refusal hands `chat_write` the chat as it is, to write what still applies; None when
        it gives up (nothing is stored). The message's id is new: a message of that id found
        stored is an error, not a retry."""
        item = _outbound_item(message)
        put = {"Put": {"TableName": self.table.name, "Item": item, "ConditionExpression": "attribute_not_exists(id)"}}
        attempts = 0
        while True:
            try:
                # The token makes the SDK's own retry of this attempt (a reply lost after the commit)
                # the same transaction, answered as done, rather than a message found stored.
                token = hashlib.sha256(f"{item['id']}#{attempts}".encode()).hexdigest()[:36]
                self.table.meta.client.transact_write_items(TransactItems=[put, chat_write.element()], ClientRequestToken=token)
                return item
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                mine, chat = (error.response.get("CancellationReasons") or [{}, {}])[:2]
                if mine.get("Code") == "ConditionalCheckFailed":
                    raise MessageExists(item["id"]) from error
                if chat.get("Code") == "ConditionalCheckFailed":
                    if not chat_write.refused(as_stored(chat.get("Item"))):
                        return None
                # Narrowed to what still applies, or a concurrent transaction touched either item: again.
                attempts += 1
                if attempts == ALONG_ATTEMPTS:
                    raise

    def mark_sending(self, message_id: str, attempt: str) -> bool:
        """The call to Meta is about to start: from now until its answer is recorded, the outcome
        is unknown if this attempt dies. False when the message is no longer `queued`."""
        return update_if(
            self.table,
            Key={"id": message_id},
            UpdateExpression="SET #status = :sending, send_attempt = :attempt, sending_at = :now",
            ConditionExpression="#status = :queued",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":sending": SENDING, ":queued": "queued", ":attempt": attempt, ":now": int(time.time())},
        )

    def record_accepted(self, message_id: str, transport: str, wamid: str | None = None, transport_message_id: str | None = None) -> None:
        """Meta (or End User Messaging Social) took the message: keep its ids and move the status
        to `accepted`. End User Messaging Social answers with its own message id; Meta's wamid then
        arrives with the first status (`link_callback`)."""
        now = int(time.time())
        values: dict = {":now": now, ":transport": transport}
        facts = ["accepted_at = :now", "transport = :transport"]
        if wamid:
            facts.append("wamid = :wamid")
            values[":wamid"] = wamid
        if transport_message_id:
            facts.append("transport_message_id = :tmid")
            values[":tmid"] = transport_message_id
        done = f"REMOVE last_error, send_attempt, {UNSENT_SHARD}, {UNSENT_SINCE}"
        accepted = update_if(
            self.table,
            Key={"id": message_id},
            UpdateExpression="SET " + ", ".join(facts + ["#status = :status", "status_rank = :rank", "status_at = :now"]) + " " + done,
            ConditionExpression="status_rank < :rank",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={**values, ":status": "accepted", ":rank": delivery.rank("accepted")},
        )
        if not accepted:
            self.table.update_item(
                Key={"id": message_id},
                UpdateExpression="SET " + ", ".join(facts) + " " + done,
                ExpressionAttributeValues=values,
            )

    def link_wamid(self, wamid: str, message_id: str) -> None:
        """Point Meta's wamid at our message so its status webhooks land there.

        A status may have won the race and created an item under the wamid: its facts move onto
        our message (the same monotonic rules) and it leaves the chat listing.
        """
        old = self.table.update_item(
            Key={"id": wamid},
            UpdateExpression="SET link_to = :id REMOVE chat_id, #pos",
            ExpressionAttributeNames={"#pos": "position"},
            ExpressionAttributeValues={":id": message_id},
            ReturnValues="ALL_OLD",
        ).get("Attributes") or {}
        old = from_item_value(old)  # numbers in its errors and pricing come back as Decimal
        for status in delivery.STATUS_RANK:
            if f"{status}_at" in old:
                self.apply_status(
                    StatusUpdate(
                        message_id=message_id,
                        phone_number_id=old.get("phone_number_id", ""),
                        wa_id=None,
                        status=status,
                        timestamp=int(old[f"{status}_at"]),
                        errors=old.get("errors", []) if status == "failed" else [],
                        pricing=old.get("pricing"),
                    )
                )

    def link_callback(self, update: StatusUpdate) -> bool:
        """A status that landed on an item of its own (its wamid not linked yet) but names one of
        our messages in `biz_opaque_callback_data` (the sender puts our message id there): link the
        wamid to that message, which adopts the status. This is how statuses
        find messages sent through End User Messaging Social (whose answer carries its own id, not
        the wamid) and messages whose send answer was lost. Returns True when it linked."""
        ours = update.callback_data
        if not ours or not ours.startswith(OUTBOUND_ID_PREFIX) or ours == update.message_id:
            return False
        # Only a message of ours from the same number, not yet tied to another wamid: the callback
        # data is whatever the sender put there, and other tools may share the number.
        if not update_if(
            self.table,
            Key={"id": ours},
            UpdateExpression="SET wamid = :wamid",
            ConditionExpression="phone_number_id = :number AND direction = :out AND (attribute_not_exists(wamid) OR wamid = :wamid)",
            ExpressionAttributeValues={":wamid": update.message_id, ":number": update.phone_number_id, ":out": OUTBOUND},
        ):
            return False
        self.link_wamid(update.message_id, ours)
        return True

    def record_failure(self, message_id: str, reason: str, error: dict | None) -> None:
        """Final failure before or at Meta: the message will not be sent."""
        now = int(time.time())
        values = {":status": "failed", ":rank": delivery.rank("failed"), ":now": now, ":reason": reason}
        sets = "#status = :status, status_rank = :rank, status_at = :now, failed_at = :now, failure_reason = :reason"
        if error:
            sets += ", #errors = :errors"
            values[":errors"] = to_item_value([error])
        failed = self._update_returning(
            Key={"id": message_id},
            UpdateExpression="SET " + sets + f" REMOVE last_error, {UNSENT_SHARD}, {UNSENT_SINCE}",
            ConditionExpression="status_rank < :rank",
            ExpressionAttributeNames={"#status": "status", **({"#errors": "errors"} if error else {})},
            ExpressionAttributeValues=values,
        )
        if failed is not None:
            self._progressed(failed, "failed")

    def _update_returning(self, **kwargs) -> dict | None:
        """A conditional update that returns the item as written, or None when the condition failed."""
        try:
            return self.table.update_item(ReturnValues="ALL_NEW", **kwargs).get("Attributes") or {}
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise

    def _progressed(self, item: dict, status: str) -> None:
        if self.progress is not None and item.get("campaign_id"):
            self.progress.count_status(self.table, item, status)

    def mark_campaign(self, message_id: str, campaign_id: str) -> None:
        """A customer's message answering a campaign: the inbox shows which."""
        self.table.update_item(Key={"id": message_id}, UpdateExpression="SET campaign_id = :c", ExpressionAttributeValues={":c": campaign_id})

    def record_attempt_error(self, message_id: str, reason: str, error: dict | None) -> int:
        """A retryable failure, kept on the message so a parked (DLQ) message says why: Meta
        answered, so the message is `queued` again, not `sending`. The throughput slot it held is
        spent. Returns how many attempts have failed so far."""
        updated = self.table.update_item(
            Key={"id": message_id},
            UpdateExpression="SET last_error = :e, attempts = if_not_exists(attempts, :zero) + :one, #status = :queued "
            "REMOVE send_slot_ms, send_attempt",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":e": to_item_value({"reason": reason, **(error or {})}), ":zero": 0, ":one": 1, ":queued": "queued",
            },
            ReturnValues="UPDATED_NEW",
        )
        return int(updated["Attributes"]["attempts"])

    def reopen_parked(self, message_id: str) -> bool:
        """A message failed for `retries_exhausted` (parked in the DLQ) that an operator redrove:
        queued again, with a fresh attempt budget. Any other failure stays final."""
        now = time.time()
        return update_if(
            self.table,
            Key={"id": message_id},
            UpdateExpression=f"SET #status = :queued, status_rank = :rank, status_at = :now, attempts = :zero, "
            f"{UNSENT_SHARD} = :shard, {UNSENT_SINCE} = :now_ms "
            "REMOVE failure_reason, failed_at, send_slot_ms",
            ConditionExpression="#status = :failed AND begins_with(failure_reason, :parked)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":queued": "queued", ":rank": delivery.rank("queued"), ":now": int(now), ":zero": 0,
                ":failed": "failed", ":parked": RETRIES_EXHAUSTED, ":shard": unsent_shard(message_id),
                ":now_ms": int(now * 1000),
            },
        )

    def hold_send_slot(self, message_id: str, at_s: float) -> None:
        """The number's throughput slot reserved for this message, kept until it is sent: when the
        message comes back it uses this slot instead of queueing for another one."""
        self.table.update_item(
            Key={"id": message_id},
            UpdateExpression="SET send_slot_ms = :at",
            ExpressionAttributeValues={":at": int(at_s * 1000)},
        )

    # --- unsent messages (the sweeper) --------------------------------------------------------
    def unsent_before(self, shard: str, before_ms: int, limit: int) -> list[dict]:
        """Messages of one shard still waiting to be sent (`queued` or `sending`) whose last check is
        older than `before_ms`, oldest first. A query on the sparse `unsent` index, never a scan."""
        response = self.table.query(
            IndexName=UNSENT,
            KeyConditionExpression=f"{UNSENT_SHARD} = :shard AND {UNSENT_SINCE} < :before",
            ExpressionAttributeValues={":shard": shard, ":before": before_ms},
            Limit=limit,
        )
        return response.get("Items", [])

    def unsent_of_campaign(self, campaign_id: str) -> list[dict]:
        """A campaign's messages still waiting to be sent (a paused campaign's, when it resumes):
        the sparse `unsent` index of every shard, filtered by campaign."""
        found = []
        for shard in range(UNSENT_SHARDS):
            kwargs = {
                "IndexName": UNSENT,
                "KeyConditionExpression": f"{UNSENT_SHARD} = :shard",
                "FilterExpression": "campaign_id = :campaign",
                "ExpressionAttributeValues": {":shard": str(shard), ":campaign": campaign_id},
            }
            while True:
                response = self.table.query(**kwargs)
                found.extend(response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found

    def mark_checked(self, message_id: str, at_ms: int) -> bool:
        """The sweeper looked at this message (and re-enqueued it, or saw it waiting for a slot due
        at `at_ms`): it is not looked at again before the threshold has passed once more. False when
        it left the index meanwhile (sent or failed)."""
        return update_if(
            self.table,
            Key={"id": message_id},
            UpdateExpression=f"SET {UNSENT_SINCE} = :at",
            ConditionExpression=f"attribute_exists({UNSENT_SHARD})",
            ExpressionAttributeValues={":at": at_ms},
        )

    # --- reads ------------------------------------------------------------------------------
    def get(self, message_id: str) -> dict | None:
        return self.table.get_item(Key={"id": message_id}).get("Item")

    def list_for_chat(self, chat: str, limit: int, start_key: dict | None) -> tuple[list[dict], dict | None]:
        """Oldest first."""
        return index_page(self.table, BY_CHAT, "chat_id", chat, limit, start_key, newest_first=False)

    def counted_since(self, chat: str, since: int, cap: int) -> list[dict]:
        """The chat's messages from `since` on (oldest first), only what counting needs (source,
        timestamp, whether imported), at most `cap`."""
        found: list[dict] = []
        kwargs: dict = {
            "IndexName": BY_CHAT,
            "KeyConditionExpression": "chat_id = :chat AND #pos >= :from",
            "ExpressionAttributeValues": {":chat": chat, ":from": f"{since:011d}"},
            "ProjectionExpression": "#src, #ts, is_history",
            "ExpressionAttributeNames": {"#src": "source", "#ts": "timestamp", "#pos": "position"},
        }
        while len(found) < cap:
            response = self.table.query(**kwargs)
            found += response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:cap]

    def latest_for_chat(self, chat: str, limit: int) -> list[dict]:
        """The chat's newest messages, newest first."""
        return index_page(self.table, BY_CHAT, "chat_id", chat, limit, None, newest_first=True)[0]



def erase_chat_messages(store: MessageStore, chat_id: str, page: int = 200) -> int:
    """Remove every message of the chat (a customer's erasure); returns how many were removed."""
    ids, start = [], None
    while True:
        items, start = store.list_for_chat(chat_id, page, start)
        ids += [item["id"] for item in items]
        if not start:
            break
    with store.table.batch_writer() as batch:
        for message_id in ids:
            batch.delete_item(Key={"id": message_id})
    return len(ids)
