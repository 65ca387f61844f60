"""Campaigns, their stored recipient pages, their progress counters, the link from a customer's chat
to the campaign that last wrote to it, and each portfolio's messaging-limit ledger: one table
(`coexist.resources.CAMPAIGNS`), keyed `pk` + `sk`.

    campaign#<id>     campaign            settings, state, next page, counters (queued, sent, …, skipped_<reason>)
    campaign#<id>     page#<n>            up to a page of recipients: [[wa_id, [parameters]], …] (expires)
    chat#<chat id>    campaign            the campaign that last wrote to this customer, and whether it replied
    portfolio#<waba>  limit               the messaging limit (tier) and quality rating, and where they came from
    portfolio#<waba>  reach#<customer>    when the customer was last counted against the limit (expires)
    portfolio#<waba>  hour#<hour>         how many customers were first counted in that hour (expires)

Every counter moves in the same conditional write (or transaction) as the fact it counts, so a
retried page or a replayed webhook never counts twice (rule 5).
"""

from __future__ import annotations

import random
import time

from botocore.exceptions import ClientError

from coexist.domain import delivery
from coexist.domain.campaigns import CampaignState, Recipient
from coexist.domain.messaging_limit import HOUR_S, WINDOW_HOURS, window_hours
from coexist.store.conditional import put_if_absent, update_if
from coexist.store.items import from_item_value

CAMPAIGN = "campaign"
PAGE_TTL_S = 30 * 24 * 3600  # a list is kept a month after it was given: long enough to run, not forever
LEDGER_TTL_S = (WINDOW_HOURS + 2) * HOUR_S
REPLY_WINDOW_S = 7 * 24 * 3600  # a customer's message this long after a campaign message is its reply
REPLY_CLOCK_SKEW_S = 60  # a reply timed (by Meta) a little before our record of the send still counts


def within_reply_window(campaign_wrote_at: int, at: int) -> bool:
    """A customer's message at `at` may answer a campaign message sent at `campaign_wrote_at`."""
    return campaign_wrote_at - REPLY_CLOCK_SKEW_S <= at <= campaign_wrote_at + REPLY_WINDOW_S
COUNTED_STATUSES = ("sent", "delivered", "read")  # a message at a status has passed the ones before it
COUNTERS = ("queued", "sent", "delivered", "read", "failed", "replied")


def campaign_key(campaign_id: str) -> dict:
    return {"pk": f"campaign#{campaign_id}", "sk": CAMPAIGN}


def page_key(campaign_id: str, page: int) -> dict:
    return {"pk": f"campaign#{campaign_id}", "sk": f"page#{page:06d}"}


def _hour_sk(hour: int) -> str:
    return f"hour#{hour:010d}"


CONFLICT_RETRIES = 5


def _transact(client, items: list[dict]) -> bool:
    """Write the items as one transaction. False when a condition failed (the fact was already
    counted); a conflict with another transaction on the same item (every status of a
    campaign counts on its one item) is tried again after a short pause, then raised."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            client.transact_write_items(TransactItems=items)
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:  # counted already (or, for a counter, no campaign)
                return False
            if not reasons and "ConditionalCheckFailed" in str(error):  # an emulator without reasons
                return False
            if attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
    return False


class CampaignStore:
    def __init__(self, table, clock=time.time):
        self.table = table
        self.clock = clock

    # --- the campaign -----------------------------------------------------------------------
    def create(self, campaign: dict, pages: list[list[Recipient]]) -> bool:
        """The pages first, then the campaign that names them: a campaign never points at a page
        that is not there. False when a campaign with this id exists (a retried request)."""
        expires = int(self.clock()) + PAGE_TTL_S
        with self.table.batch_writer() as batch:
            for number, page in enumerate(pages):
                batch.put_item(Item={
                    **page_key(campaign["campaign_id"], number), "expires_at": expires,
                    "recipients": [[r.wa_id, list(r.parameters)] for r in page],
                })
        item = {**campaign_key(campaign["campaign_id"]), **campaign, **{c: 0 for c in COUNTERS}}
        return put_if_absent(self.table, {k: v for k, v in item.items() if v is not None}, "pk")

    def erase_customer(self, chat_ids: list[str], wa_ids: set[str]) -> int:
        """Erasure: the customers' campaign links, and their entries in every stored list (the
        number and the parameters, which may name them). A list entry becomes an empty one, so the
        pages keep their positions and a campaign still running skips it as `erased`. Lists are
        found by a scan of the pages (erasure is rare, pages expire within a month; no index holds
        phone numbers). Returns how many list entries were erased."""
        for chat_id in chat_ids:
            self.table.delete_item(Key={"pk": f"chat#{chat_id}", "sk": CAMPAIGN})
        erased = 0
        if not wa_ids:
            return erased
        kwargs = {"FilterExpression": "begins_with(sk, :page)", "ExpressionAttributeValues": {":page": "page#"}}
        while True:
            response = self.table.scan(**kwargs)
            for item in response.get("Items", []):
                recipients = item.get("recipients", [])
                kept = [["", []] if wa_id in wa_ids else [wa_id, parameters] for wa_id, parameters in recipients]
                hits = sum(1 for wa_id, _ in recipients if wa_id in wa_ids)
                if hits:
                    self.table.update_item(Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="SET recipients = :kept",
                                           ExpressionAttributeValues={":kept": kept})
                    erased += hits
            if "LastEvaluatedKey" not in response:
                return erased
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get(self, campaign_id: str) -> dict | None:
        item = self.table.get_item(Key=campaign_key(campaign_id), ConsistentRead=True).get("Item")
        return from_item_value(item) if item else None

    def page(self, campaign_id: str, page: int) -> list[Recipient]:
        item = self.table.get_item(Key=page_key(campaign_id, page), ConsistentRead=True).get("Item") or {}
        return [Recipient(wa_id, tuple(parameters)) for wa_id, parameters in item.get("recipients", [])]

    def move(self, campaign_id: str, from_states, to: CampaignState, sets: dict | None = None, remove: tuple[str, ...] = ()) -> bool:
        """Change the state only from one of `from_states` (a pause racing the last page is refused, not lost)."""
        names, values = {"#state": "state"}, {":to": to.value, ":now": int(self.clock())}
        clauses = ["#state = :to", "state_changed_at = :now"]
        for i, (name, value) in enumerate((sets or {}).items()):
            names[f"#s{i}"], values[f":s{i}"] = name, value
            clauses.append(f"#s{i} = :s{i}")
        allowed = []
        for i, state in enumerate(sorted(s.value for s in from_states)):
            values[f":from{i}"] = state
            allowed.append(f":from{i}")
        expression = "SET " + ", ".join(clauses) + (" REMOVE " + ", ".join(remove) if remove else "")
        return update_if(
            self.table, Key=campaign_key(campaign_id), UpdateExpression=expression,
            ConditionExpression=f"attribute_exists(pk) AND #state IN ({', '.join(allowed)})",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
        )

    def finish_page(self, campaign_id: str, page: int, queued: int, skipped: dict[str, int]) -> bool:
        """The page is done: its counts are added and the campaign moves to the next page, once
        (a duplicate or retried run of the same page finds `next_page` moved and adds nothing)."""
        names, values = {"#q": "queued"}, {":page": page, ":next": page + 1, ":q": queued}
        adds = ["#q :q"]
        for i, (reason, count) in enumerate(sorted(skipped.items())):
            names[f"#k{i}"], values[f":k{i}"] = f"skipped_{reason}", count
            adds.append(f"#k{i} :k{i}")
        return update_if(
            self.table, Key=campaign_key(campaign_id),
            UpdateExpression="SET next_page = :next ADD " + ", ".join(adds),
            ConditionExpression="next_page = :page",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
        )

    # --- progress from the messages' own statuses ---------------------------------------------
    def count_status(self, message_table, message: dict, status: str) -> int:
        """A campaign message reached `status`: count it (and the lower levels it skipped: a `read`
        with no `delivered` before it was delivered too) once per message and level. Returns how
        many counters moved."""
        campaign_id = message.get("campaign_id")
        if not campaign_id:
            return 0
        rank = delivery.rank(status)
        if status == "failed":
            levels = ["failed"]
        elif rank is None:
            return 0
        else:
            levels = [s for s in COUNTED_STATUSES if delivery.rank(s) <= rank]
        already = set(message.get("campaign_counted") or ())
        moved = 0
        for level in levels:
            if level in already:
                continue
            moved += self._count_once(message_table, {"id": message["id"]}, "campaign_counted", level, campaign_id, level)
        return moved

    def note_recipient(self, chat_id: str, campaign_id: str, message_id: str) -> None:
        """This customer's chat last heard from this campaign: its next message is the reply."""
        self.table.put_item(Item={
            "pk": f"chat#{chat_id}", "sk": CAMPAIGN, "campaign_id": campaign_id, "message_id": message_id,
            "at": int(self.clock()), "expires_at": int(self.clock()) + REPLY_WINDOW_S,
        })

    def campaign_of_reply(self, chat_id: str, at: int) -> dict | None:
        """The campaign a customer's message at `at` answers, if one wrote to them shortly before."""
        item = self.table.get_item(Key={"pk": f"chat#{chat_id}", "sk": CAMPAIGN}).get("Item")
        if not item or not within_reply_window(int(item["at"]), at):
            return None
        return from_item_value(item)

    def count_reply(self, chat_id: str, campaign_id: str) -> bool:
        """The customer answered the campaign: counted once per customer and campaign."""
        return bool(self._count_once(self.table, {"pk": f"chat#{chat_id}", "sk": CAMPAIGN}, "replied_to", campaign_id, campaign_id, "replied"))

    def _count_once(self, table, key: dict, marks: str, mark: str, campaign_id: str, counter: str) -> int:
        """Mark `mark` on the item at `key` and add one to the campaign's `counter`, in one
        transaction; 0 when the mark was already there."""
        counted = _transact(self.table.meta.client, [
                {"Update": {
                    "TableName": table.name, "Key": key,
                    "UpdateExpression": "ADD #marks :mark",
                    "ConditionExpression": "NOT contains(#marks, :one)",
                    "ExpressionAttributeNames": {"#marks": marks},
                    "ExpressionAttributeValues": {":mark": {mark}, ":one": mark},
                }},
                {"Update": {
                    "TableName": self.table.name, "Key": campaign_key(campaign_id),
                    "UpdateExpression": "ADD #counter :one",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#counter": counter},
                    "ExpressionAttributeValues": {":one": 1},
                }},
            ])
        return 1 if counted else 0

    # --- the messaging limit of a portfolio ---------------------------------------------------
    def messaging_limit(self, portfolio: str) -> dict | None:
        item = self.table.get_item(Key={"pk": f"portfolio#{portfolio}", "sk": "limit"}).get("Item")
        return from_item_value(item) if item else None

    def record_messaging_limit(self, portfolio: str, at: int, source: str, limit: int | None = None, quality: str | None = None) -> bool:
        """Keep the newest word on the tier and on the quality rating (webhooks arrive out of order:
        an older one changes nothing). `source` says where it came from (a webhook, or a person)."""
        sets, names, values = [], {}, {":at": at, ":source": source}
        for name, value in (("messaging_limit", limit), ("quality_rating", quality)):
            if value is None:
                continue
            names[f"#{name}"], names[f"#{name}_at"], names[f"#{name}_source"] = name, f"{name}_at", f"{name}_source"
            values[f":{name}"] = value
            sets += [f"#{name} = :{name}", f"#{name}_at = :at", f"#{name}_source = :source"]
        if not sets:
            return False
        conditions = " AND ".join(f"(attribute_not_exists(#{n}_at) OR #{n}_at <= :at)" for n in ("messaging_limit", "quality_rating") if f"#{n}" in names)
        return update_if(
            self.table, Key={"pk": f"portfolio#{portfolio}", "sk": "limit"},
            UpdateExpression="SET " + ", ".join(sets), ConditionExpression=conditions,
            ExpressionAttributeNames=names, ExpressionAttributeValues=values,
        )

    def reached_by_hour(self, portfolio: str, now: float) -> dict[int, int]:
        hours = window_hours(now)
        response = self.table.query(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={":pk": f"portfolio#{portfolio}", ":first": _hour_sk(hours.start), ":last": _hour_sk(hours.stop - 1)},
            ConsistentRead=True,
        )
        return {int(item["sk"].removeprefix("hour#")): int(item.get("reached", 0)) for item in response.get("Items", [])}

    def reach(self, portfolio: str, customer_id: str, now: float) -> bool:
        """Count the customer against the portfolio's limit unless it already counts in the window.
        True when it was counted now."""
        hour = int(now) // HOUR_S
        window_start = (hour - WINDOW_HOURS + 1) * HOUR_S
        return _transact(self.table.meta.client, [
                {"Put": {
                    "TableName": self.table.name,
                    "Item": {"pk": f"portfolio#{portfolio}", "sk": f"reach#{customer_id}", "reached_at": int(now),
                             "expires_at": int(now) + LEDGER_TTL_S},
                    "ConditionExpression": "attribute_not_exists(pk) OR reached_at < :start",
                    "ExpressionAttributeValues": {":start": window_start},
                }},
                {"Update": {
                    "TableName": self.table.name, "Key": {"pk": f"portfolio#{portfolio}", "sk": _hour_sk(hour)},
                    "UpdateExpression": "ADD reached :one SET expires_at = :expires",
                    "ExpressionAttributeValues": {":one": 1, ":expires": int(now) + LEDGER_TTL_S},
                }},
            ])
