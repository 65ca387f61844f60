"""Message templates of each WhatsApp Business Account, as last synced from Meta."""

from __future__ import annotations

import re
import time

from coexist.store.items import to_item_value

# A body's placeholders, positional ({{1}}) or named ({{first_name}}); one used twice is one parameter.
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def template_placeholders(body_text: str | None) -> int:
    return len(set(_PLACEHOLDER.findall(body_text or "")))


def template_key(name: str, language: str) -> str:
    return f"{name}#{language}"


def body_parameter_count(components: list[dict]) -> int:
    body = next((c for c in components or [] if str(c.get("type", "")).upper() == "BODY"), None)
    return template_placeholders(body.get("text") if body else None)


class TemplateStore:
    def __init__(self, table):
        self.table = table

    def replace_all(self, waba_id: str, templates: list[dict]) -> dict:
        """Store what Meta lists now; templates Meta no longer lists are removed."""
        synced_at = int(time.time())
        current = {template_key(t["name"], t["language"]): t for t in templates}
        existing = {i["template_key"] for i in self._all(waba_id, projection="template_key")}
        with self.table.batch_writer() as batch:
            for key, template in current.items():
                batch.put_item(
                    Item={
                        "waba_id": waba_id,
                        "template_key": key,
                        "name": template["name"],
                        "language": template["language"],
                        "status": template.get("status", "UNKNOWN").upper(),
                        "category": template.get("category", "UNKNOWN").upper(),
                        "meta_id": template.get("id"),
                        "components": to_item_value(template.get("components", [])),
                        "body_parameters": body_parameter_count(template.get("components", [])),
                        "synced_at": synced_at,
                    }
                )
            for key in existing - set(current):
                batch.delete_item(Key={"waba_id": waba_id, "template_key": key})
        return {"waba_id": waba_id, "templates": len(current), "removed": len(existing - set(current))}

    def get(self, waba_id: str, name: str, language: str) -> dict | None:
        return self.table.get_item(Key={"waba_id": waba_id, "template_key": template_key(name, language)}).get("Item")

    def list(self, waba_id: str) -> list[dict]:
        return self._all(waba_id)

    def _all(self, waba_id: str, projection: str | None = None) -> list[dict]:
        kwargs: dict = {"KeyConditionExpression": "waba_id = :w", "ExpressionAttributeValues": {":w": waba_id}}
        if projection:
            kwargs["ProjectionExpression"] = projection
        items, start = [], None
        while True:
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self.table.query(**kwargs)
            items += response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return items
