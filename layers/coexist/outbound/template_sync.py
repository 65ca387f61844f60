"""Keep each account's templates in step with Meta (on a schedule and on demand)."""

from __future__ import annotations

from coexist.outbound.graph import GraphApi
from coexist.store.templates import TemplateStore


def sync_templates(graph: GraphApi, store: TemplateStore, waba_ids: list[str]) -> list[dict]:
    return [store.replace_all(waba_id, graph.message_templates(waba_id)) for waba_id in waba_ids]


def configured_waba_ids(value: str) -> list[str]:
    return [w.strip() for w in value.split(",") if w.strip()]
