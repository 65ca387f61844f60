"""What a customer's message answers: the reply button, list row or quick reply they tapped.

Apart from `interpret` (which builds Meta's webhook models) so that the bot's turn reads a reply
without loading them."""

from __future__ import annotations


def reply_id(message_type: str, content) -> str | None:
    """The id of the tapped reply button, list row or template quick reply, if any."""
    content = content if isinstance(content, dict) else {}
    if message_type == "interactive":
        chosen = content.get(content.get("type") or "") or {}
        return chosen.get("id") if isinstance(chosen, dict) else None
    if message_type == "button":
        return content.get("payload")
    return None
