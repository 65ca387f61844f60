"""The inbox as the console filters it: a number's chats in one mode, or whose contact's name
(or number) matches what the agent typed, newest first, in pages.

Reads the `by_recent` index only (never a Scan): each request reads at most `MAX_READS` index
pages and answers with what matched so far and a cursor, so a rare mode or name never turns one
request into a walk over every chat; the console follows the cursor as it scrolls.
"""

from __future__ import annotations

from coexist.domain.chat import ChatMode
from coexist.reads import CHATS_PAGE, BadRequest, InboxReader, decode_cursor, encode_cursor, page_size

MAX_READS = 5
READ_SIZE = 100  # chats read per index page when filtering (a filter keeps only some of them)
MAX_QUERY = 100


class FilteredInbox(InboxReader):
    def chats_matching(
        self, phone_number_id: str | None, mode: str | None, query: str | None, limit: str | None, cursor: str | None
    ) -> dict:
        if not phone_number_id:
            raise BadRequest("phone_number_id is required")
        try:
            wanted = ChatMode(mode) if mode else None
        except ValueError:
            raise BadRequest(f"mode must be one of {', '.join(m.value for m in ChatMode)}") from None
        needle = (query or "").strip().casefold()
        if len(needle) > MAX_QUERY:
            raise BadRequest(f"q is at most {MAX_QUERY} characters")
        size = page_size(limit)
        start = decode_cursor(cursor, CHATS_PAGE, {"phone_number_id": phone_number_id})
        read_size = size if not (mode or needle) else max(size, READ_SIZE)
        found: list[dict] = []
        for _ in range(MAX_READS):
            chats, last = self.inbox.chats.list_recent_in_mode(phone_number_id, wanted, read_size, start)
            contacts = self.inbox.contacts.get_many(phone_number_id, [c.chat_id for c in chats]) if chats else {}
            for chat in chats:
                view = self._chat(chat, contacts.get(chat.chat_id))
                if needle and needle not in (view["contact_name"] or "").casefold() and needle not in (view["wa_id"] or ""):
                    continue
                found.append(view)
                if len(found) == size:
                    # Full: the next page starts after this chat, even mid-read.
                    after = {"phone_number_id": chat.phone_number_id, "chat_id": chat.chat_id,
                             "last_message_at": chat.last_message_at}
                    return {"items": found, "next": encode_cursor(after) if (last or chat is not chats[-1]) else None}
            if not last:
                return {"items": found, "next": None}
            start = last
        return {"items": found, "next": encode_cursor(start)}
