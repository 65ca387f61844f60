"""The reminders table: one item per reminder, its status and the customer's answer.

Every change is conditional: a reminder is sent once (only from `scheduled`), cancelled only
before it is sent, and an answer is recorded once per reply message (a duplicate webhook changes
nothing; a later, different answer replaces an earlier one).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from coexist.domain.reminder import ReminderStatus
from coexist.store.conditional import is_condition_failure, put_if_absent, update_if
from coexist.store.items import from_item_value, to_item_value


class ReminderStore:
    def __init__(self, table):
        self.table = table

    def create(self, item: dict) -> bool:
        return put_if_absent(self.table, to_item_value(item), "reminder_id")

    def get(self, reminder_id: str) -> dict | None:
        item = self.table.get_item(Key={"reminder_id": reminder_id}, ConsistentRead=True).get("Item")
        return from_item_value(item) if item else None

    def cancel(self, reminder_id: str, at: int) -> bool:
        return self._move(reminder_id, ReminderStatus.CANCELLED, {"cancelled_at": at})

    def mark_sent(self, reminder_id: str, message_id: str, at: int) -> bool:
        return self._move(reminder_id, ReminderStatus.SENT, {"message_id": message_id, "sent_at": at})

    def mark_failed(self, reminder_id: str, reason: str, at: int) -> bool:
        return self._move(reminder_id, ReminderStatus.FAILED, {"failure_reason": reason, "failed_at": at})

    def record_answer(self, reminder_id: str, answer: str, message_id: str, at: int) -> dict | None:
        """The reminder with this answer, or None when it is unknown or this reply was already recorded."""
        try:
            answer_item = self.table.update_item(
                Key={"reminder_id": reminder_id},
                UpdateExpression="SET answer = :answer, answer_message_id = :mid, answered_at = :at",
                ConditionExpression="attribute_exists(reminder_id) AND "
                "(attribute_not_exists(answer_message_id) OR answer_message_id <> :mid)",
                ExpressionAttributeValues={":answer": answer, ":mid": message_id, ":at": at},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return None
            raise
        return from_item_value(answer_item["Attributes"])

    def _move(self, reminder_id: str, to: ReminderStatus, facts: dict) -> bool:
        names = {f"#{k}": k for k in facts} | {"#status": "status"}
        values = {f":{k}": v for k, v in facts.items()} | {":to": to.value, ":scheduled": ReminderStatus.SCHEDULED.value}
        return update_if(
            self.table,
            Key={"reminder_id": reminder_id},
            UpdateExpression="SET #status = :to, " + ", ".join(f"#{k} = :{k}" for k in facts),
            ConditionExpression="#status = :scheduled",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
