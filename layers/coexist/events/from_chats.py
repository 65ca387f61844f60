"""The chat repository's changes of hands, as domain events (its `observer`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from coexist.domain.chat import Chat, ChatEvent, ChatMode, Takeover
from coexist.store.chats import SATISFACTION_RECORDED

if TYPE_CHECKING:
    from coexist.events.models import DomainEvent


def events_of(event: str, before: Chat, sets: dict, now: int) -> list[DomainEvent]:
    """What a written change means for a CRM; nothing for the moves it does not care about."""
    # Imported here: the event models (and pydantic under them) load with the first change a CRM
    # hears of, not with every function that holds the chat repository (the exporter, retention).
    from coexist.events.models import ChatAssigned, ChatClosed, ChatQueued, ChatSatisfactionRecorded, ChatTakenOver, iso

    common = {"phone_number_id": before.phone_number_id, "chat_id": before.chat_id,
              "conversation_id": before.conversation_id, "occurred_at": iso(now)}
    if event == ChatEvent.QUEUED:
        return [ChatQueued(**common)]
    if event in (ChatEvent.ACCEPTED, ChatEvent.PICKED_UP):
        return [ChatAssigned(**common, agent_id=sets["assignee"])]
    if event == ChatEvent.PHONE_APP_REPLIED and before.takeover_by != Takeover.APP:
        # Once per conversation: every later echo of the same takeover changes nothing.
        return [ChatTakenOver(**common, by=Takeover.APP.value)]
    if event == ChatEvent.AGENT_REPLIED and sets.get("assignee") and before.takeover_by != Takeover.AGENT:
        return [ChatTakenOver(**common, by=Takeover.AGENT.value, agent_id=sets["assignee"]),
                ChatAssigned(**common, agent_id=sets["assignee"])]
    if event in (ChatEvent.ENDED, ChatEvent.CLOSED_BY_AGENT) and before.mode != ChatMode.CLOSED:
        return [ChatClosed(**common, closed_by="agent" if event == ChatEvent.CLOSED_BY_AGENT else "workflow",
                           agent_id=before.assignee, satisfaction_score=before.satisfaction_score)]
    if event == SATISFACTION_RECORDED and before.satisfaction_score is None:
        return [ChatSatisfactionRecorded(**common, score=sets["satisfaction_score"])]
    return []


def chat_observer(publish: Callable, clock=time.time) -> Callable[[str, Chat, dict], None]:
    """An observer for the chat repository that publishes each change's events."""

    def observe(event: str, before: Chat, sets: dict) -> None:
        found = events_of(event, before, sets, int(clock()))
        if found:
            publish(found)

    return observe
