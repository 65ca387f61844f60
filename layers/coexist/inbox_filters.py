"""The inbox as the console filters it: a number's chats in one mode, or whose contact's name
(or number) matches what the agent typed, newest first, in pages.

Reads the `by_recent` index only (never a Scan): each request reads at most `MAX_READS` index
pages and answers with what matched so far and a cursor, so a rare mode or name never turns one
request into a walk over every chat; the console follows the cursor as it scrolls.
"""

from __future__ import annotations

from coexist.reads import BadRequest, InboxReader, decode_cursor, encode_cursor, page_size
from coexist.store.chat_filters import recent_chats_in_mode
from coexist.store.chats import AGENT, APP, BOT, CLOSED, QUEUED

MODES = (BOT, QUEUED, AGENT, APP, CLOSED)
MAX_READS = 5
READ_SIZE = 100  # chats read per index page when filtering (a filter keeps only some of them)
CURSOR_KEYS = {"phone_number_id", "wa_id", "last_message_at"}
MAX_QUERY = 100


class FilteredInbox(InboxReader):
    def chats_matching(
        self, phone_number_id: str | None, mode: str | None, query: str | None, limit: str | None, cursor: str | None
    ) -> dict:
        if not phone_number_id:
            raise BadRequest("phone_number_id is required")
        if mode and mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}")
        needle = (query or "").strip().casefold()
        if len(needle) > MAX_QUERY:
            raise BadRequest(f"q is at most {MAX_QUERY} characters")
        size = page_size(limit)
        start = decode_cursor(cursor, CURSOR_KEYS, {"phone_number_id": phone_number_id})
        read_size = size if not (mode or needle) else max(size, READ_SIZE)
        found: list[dict] = []
        for _ in range(MAX_READS):
            items, last = recent_chats_in_mode(self.inbox.chats.table, phone_number_id, mode or None, read_size, start)
            contacts = self.inbox.contacts.get_many(phone_number_id, [i["wa_id"] for i in items]) if items else {}
            for item in items:
                view = self._chat(item, contacts.get(item["wa_id"]))
                if needle and needle not in (view["contact_name"] or "").casefold() and needle not in view["wa_id"]:
                    continue
                found.append(view)
                if len(found) == size:
                    # Full: the next page starts after this chat, even mid-read.
                    after = {k: item[k] for k in CURSOR_KEYS}
                    return {"items": found, "next": encode_cursor(after) if (last or item is not items[-1]) else None}
            if not last:
                return {"items": found, "next": None}
            start = last
        return {"items": found, "next": encode_cursor(start)}
