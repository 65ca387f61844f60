"""Domain events: deterministic ids, text only when allowed, batched and retried publishing that
never fails its caller, and the chat changes a CRM hears of."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from coexist.domain.chat import Chat, ChatEvent, ChatMode, Takeover
from coexist.events.from_chats import SATISFACTION_RECORDED, events_of
from coexist.events.models import EVENTS, ChatClosed, LeadCaptured, MessageDelivered, MessageReceived
from coexist.events.publisher import EventPublisher

NOW = 1_767_000_000


def received(**overrides) -> MessageReceived:
    fields = {"phone_number_id": "106540352242922", "chat_id": "c" + "a" * 24, "message_id": "wamid.1",
              "message_type": "text", "occurred_at": "2026-11-30T10:00:00Z", "text": "my test results"}
    return MessageReceived(**{**fields, **overrides})


def test_the_same_fact_always_has_the_same_id_and_another_fact_another():
    assert received().id == received(occurred_at="2026-11-30T11:00:00Z").id  # a redelivery of the same message
    assert received().id != received(message_id="wamid.2").id
    delivered = MessageDelivered(phone_number_id="1", message_id="wamid.1", occurred_at="2026-11-30T10:00:00Z")
    assert delivered.id != received().id  # same wamid, another fact


def test_every_event_has_a_fixed_type_and_a_version():
    types = [model.model_fields["type"].default for model in EVENTS]
    assert len(set(types)) == len(types)
    assert all(model.model_fields["version"].default == 1 for model in EVENTS)
    with pytest.raises(ValidationError):
        MessageReceived(**{**received().model_dump(), "type": "message.sent"})


def test_each_event_and_send_request_model_is_built_at_its_first_use_not_at_import():
    # A function publishes a few of the events (the sender only MessageFailed), and several import
    # the send requests but validate one only on some invocations: building every validator at
    # import cost every cold start that loads them tens of milliseconds for models seldom used.
    script = (
        "import json\n"
        "from pydantic import BaseModel\n"
        "from coexist.events import models as events\n"
        "from coexist.outbound import requests\n"
        "models = [m for module in (events, requests) for m in vars(module).values()\n"
        "          if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == module.__name__]\n"
        "built = lambda: sorted(m.__name__ for m in models if m.__pydantic_complete__)\n"
        "at_import = built()\n"
        "event = events.MessageReceived(phone_number_id='1', chat_id='c' + 'a' * 24, message_id='wamid.1',\n"
        "                               message_type='text', occurred_at='2026-11-30T10:00:00Z')\n"
        "request = requests.parse_send_request({'type': 'text', 'text': 'hi'})\n"
        "print(json.dumps([len(models), at_import, built(), event.id, request.text]))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env={"PYTHONPATH": str(root / "layers")},
                          capture_output=True, text=True, check=True)
    count, at_import, after_use, event_id, text = json.loads(done.stdout)
    assert count > 20 and at_import == []
    assert after_use == ["MessageReceived"]  # the one used; the send request's union validates all the same
    assert len(event_id) == 32 and text == "hi"


class FakeBus:
    def __init__(self, refuse: dict[int, int] | None = None, raise_on: set[int] | None = None):
        self.calls: list[list[dict]] = []
        self.refuse = refuse or {}  # call number -> how many leading entries it refuses
        self.raise_on = raise_on or set()

    def put_events(self, Entries):
        self.calls.append(Entries)
        number = len(self.calls)
        if number in self.raise_on:
            raise ConnectionError("endpoint unreachable")
        refused = self.refuse.get(number, 0)
        return {"FailedEntryCount": refused,
                "Entries": [{"ErrorCode": "InternalFailure"} if i < refused else {"EventId": f"e{i}"} for i in range(len(Entries))]}


def test_message_text_is_left_out_unless_the_deployment_allows_it():
    bus = FakeBus()
    EventPublisher(bus, "bus").publish(received())
    EventPublisher(bus, "bus", include_text=True).publish(received())
    without, with_text = (json.loads(call[0]["Detail"]) for call in bus.calls)
    assert "text" not in without and "my test results" not in bus.calls[0][0]["Detail"]
    assert with_text["text"] == "my test results"
    assert bus.calls[0][0]["Source"] == "coexist" and bus.calls[0][0]["DetailType"] == "message.received"
    assert bus.calls[0][0]["EventBusName"] == "bus"


def test_events_go_in_batches_of_ten():
    bus = FakeBus()
    assert EventPublisher(bus, "bus").publish([received(message_id=f"wamid.{i}") for i in range(23)]) == 23
    assert [len(call) for call in bus.calls] == [10, 10, 3]


def test_refused_entries_are_retried_alone_and_a_failed_call_is_retried_whole():
    bus = FakeBus(refuse={1: 2}, raise_on={2})
    events = [received(message_id=f"wamid.{i}") for i in range(5)]
    assert EventPublisher(bus, "bus", sleep=lambda s: None).publish(events) == 5
    assert [len(call) for call in bus.calls] == [5, 2, 2]
    assert [json.loads(e["Detail"])["message_id"] for e in bus.calls[2]] == ["wamid.0", "wamid.1"]


def test_events_given_up_are_counted_and_never_raise(caplog):
    failures = []
    bus = FakeBus(raise_on={1, 2, 3})
    published = EventPublisher(bus, "bus", on_failure=failures.append, sleep=lambda s: None).publish(received())
    assert published == 0 and failures == [1] and len(bus.calls) == 3
    assert "my test results" not in caplog.text  # the log names types and ids, never the text


def chat(**fields) -> Chat:
    return Chat(phone_number_id="106540352242922", wa_id="16505551234", chat_id="c" + "b" * 24,
                conversation_id="conv-1", **fields)


def test_a_phone_app_takeover_is_told_once_per_conversation():
    first = events_of(ChatEvent.PHONE_APP_REPLIED, chat(mode=ChatMode.APP), {}, NOW)
    assert [(e.type, e.by) for e in first] == [("chat.taken_over", "app")]
    assert events_of(ChatEvent.PHONE_APP_REPLIED, chat(mode=ChatMode.APP, takeover_by=Takeover.APP), {}, NOW) == []


def test_assignment_queueing_and_closing_are_told_with_the_conversation():
    assigned = events_of(ChatEvent.ACCEPTED, chat(mode=ChatMode.QUEUED), {"assignee": "ana"}, NOW)
    assert [(e.type, e.agent_id, e.conversation_id) for e in assigned] == [("chat.assigned", "ana", "conv-1")]
    assert [e.type for e in events_of(ChatEvent.QUEUED, chat(mode=ChatMode.BOT), {}, NOW)] == ["chat.queued"]
    closed = events_of(ChatEvent.ENDED, chat(mode=ChatMode.AGENT, assignee="ana"), {}, NOW)
    assert isinstance(closed[0], ChatClosed) and closed[0].closed_by == "workflow" and closed[0].agent_id == "ana"
    assert events_of(ChatEvent.ENDED, chat(mode=ChatMode.CLOSED), {}, NOW) == []  # already closed: nothing new
    assert events_of(ChatEvent.BEGIN, chat(), {}, NOW) == []


def test_the_satisfaction_score_is_told_once():
    told = events_of(SATISFACTION_RECORDED, chat(mode=ChatMode.CLOSED), {"satisfaction_score": 5}, NOW)
    assert [(e.type, e.score) for e in told] == [("chat.satisfaction_recorded", 5)]
    assert events_of(SATISFACTION_RECORDED, chat(mode=ChatMode.CLOSED, satisfaction_score=5), {"satisfaction_score": 5}, NOW) == []


def test_a_lead_keeps_the_ads_fields():
    lead = LeadCaptured(phone_number_id="1", chat_id="c" + "a" * 24, message_id="wamid.1", occurred_at="x",
                        ad_id="120226305854810726", headline="Chat with us", source_url="https://fb.me/x",
                        source_type="ad", ctwa_clid="Aff-1")
    assert lead.model_dump()["ad_id"] == "120226305854810726"


def test_a_finished_campaign_is_told_once_with_its_final_counts():
    from coexist.events.from_campaigns import campaign_finished

    stored = {"campaign_id": "cmp-1", "phone_number_id": "106540352242922", "template_name": "spring_sale",
              "state": "finished", "finished_at": NOW, "targeted": 5, "skipped_duplicate": 1, "skipped_no_consent": 1,
              "skipped_opted_out": 0, "queued": 3, "sent": 3, "delivered": 2, "read": 1, "failed": 0, "replied": 1}
    told = campaign_finished(stored)
    assert (told.type, told.campaign_id, told.outcome, told.template_name) == ("campaign.finished", "cmp-1", "completed", "spring_sale")
    assert told.counts == {"targeted": 5, "skipped": 2, "queued": 3, "sent": 3, "delivered": 2, "read": 1, "failed": 0, "replied": 1}
    assert told.occurred_at == "2025-12-29T09:20:00Z"
    assert campaign_finished(dict(stored)).id == told.id  # the same campaign finishing, told again, is the same event
    cancelled = campaign_finished({**stored, "state": "cancelled", "finished_at": None, "state_changed_at": NOW})
    assert (cancelled.outcome, cancelled.occurred_at) == ("cancelled", "2025-12-29T09:20:00Z")
