"""docs/EVENTS.md is the models' own documentation: it fails here when they drift apart."""

from __future__ import annotations

from pathlib import Path

from coexist.events.catalog import render
from coexist.events.models import EVENTS

DOC = Path(__file__).resolve().parents[2] / "docs" / "EVENTS.md"


def test_docs_events_md_is_generated_from_the_models():
    assert DOC.read_text() == render(), (
        "docs/EVENTS.md is out of date: PYTHONPATH=layers python -m coexist.events.catalog > docs/EVENTS.md")


def test_the_doc_has_a_versioned_schema_for_every_event():
    text = DOC.read_text()
    for model in EVENTS:
        assert f"## `{model.model_fields['type'].default}` (version {model.model_fields['version'].default})" in text
