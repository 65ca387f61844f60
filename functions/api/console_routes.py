"""The agent console's reads beyond the inbox API: a number's chats filtered by mode or by name."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from coexist import wiring

router = APIGatewayRouter()


def _query(name: str) -> str | None:
    return (router.current_event.query_string_parameters or {}).get(name)


@router.get("/api/inbox")
def filtered_chats():
    from coexist.inbox_filters import FilteredInbox

    inbox = FilteredInbox(wiring.inbox())
    return inbox.chats_matching(_query("phone_number_id"), _query("mode"), _query("q"), _query("limit"), _query("cursor"))
