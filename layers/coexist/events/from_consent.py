"""The consent ledger's changes, as domain events (its `on_recorded` hook): one place tells the CRM,
whichever way the change came (a keyword, an agent, an import, Meta's 131050)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from coexist.domain.consent import AgentEvidence, ConsentChange, ImportEvidence, KeywordEvidence, PlatformEvidence, State

if TYPE_CHECKING:
    from coexist.events.models import ConsentChanged


def consent_event(change: ConsentChange) -> ConsentChanged:
    # Imported here, as in from_chats: the models load with the first change recorded.
    from coexist.events.models import ConsentChanged, iso

    evidence = change.evidence
    if isinstance(evidence, KeywordEvidence):
        source, evidence_id = "keyword", evidence.message_id
    elif isinstance(evidence, PlatformEvidence):
        source, evidence_id = f"meta_{evidence.code}", evidence.message_id
    elif isinstance(evidence, ImportEvidence):
        source, evidence_id = "import", change.change_id
    else:
        assert isinstance(evidence, AgentEvidence)
        source, evidence_id = "agent", change.change_id
    return ConsentChanged(
        phone_number_id=change.phone_number_id, chat_id=change.customer_id, purpose=change.purpose,
        granted=change.state is State.GRANTED, source=source, evidence_id=evidence_id, occurred_at=iso(change.at),
    )


def consent_observer(publish: Callable) -> Callable[[ConsentChange, object], None]:
    """An `on_recorded` hook for the ledger: every change written (never a duplicate) is published."""

    def observe(change: ConsentChange, _outcome: object) -> None:
        publish(consent_event(change))

    return observe
