"""pydantic (its import and the internals any model needs: about 100 ms of a cold start) loads only
in the functions that parse or publish with it at their first use. The others reach it, if ever,
through an import made where a model is first needed: the chat and consent observers build their
events when a change has one, the publisher with the first event it puts, and the templates store
counts a body's placeholders without the send requests' models."""

from __future__ import annotations

import pytest

from benchmarks.latency import FIRST_USE
from tests.function_imports import modules_loaded_by

# Their cold start (handler imported, first use wired) needs no model.
WITHOUT_PYDANTIC = ("webhook", "sweeper", "watchdog", "audit_archive", "raw_archive", "templates", "exporter", "retention",
                    "live_authorizer", "live_connections", "live_fanout")
# Neither do these load the domain events' module (30 ms of a cold start even with no validator
# built): the sender publishes only a failure; the API and Amazon Connect's events hold a publisher
# or an observer that may never have an event to put.
WITHOUT_EVENT_MODELS = ("sender", "api", "connect_events", *WITHOUT_PYDANTIC)


@pytest.mark.parametrize("function", WITHOUT_EVENT_MODELS)
def test_a_function_loads_neither_pydantic_nor_the_event_models_before_it_needs_them(function: str):
    loaded = modules_loaded_by([function])
    assert "coexist.wiring" in loaded and f"functions.{function}.handler" in loaded  # it did start
    assert "coexist.events.models" not in loaded
    if function in WITHOUT_PYDANTIC:
        assert not {name for name in loaded if name.split(".")[0] in ("pydantic", "pydantic_core")}


def test_every_function_is_one_or_the_other():
    # Each of these validates a webhook, a request or a bot's rules with pydantic at its first use; a
    # new function is placed on one side or the other.
    assert set(FIRST_USE) - set(WITHOUT_PYDANTIC) == {
        "ingest", "api", "sender", "conversation", "campaigns", "connect_events", "reminders",
    }
