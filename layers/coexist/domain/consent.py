"""Consent: what a customer agreed to receive from a business number, per purpose, and the
evidence of every change (docs/ARCHITECTURE.md rule 12).

Pure: purposes and their send rule, the states, a change with its typed evidence, and what a send
of a given template category (or named purpose) needs. The ledger itself is `store/consent.py`.

- A purpose is either one a send needs an explicit **grant** for (marketing, reminders: the
  customer must have said yes) or one only an explicit **withdrawal** refuses (utility: order,
  appointment and account messages the customer expects, unless they said stop to those too).
- The state of a purpose is `granted`, `withdrawn` or `unknown` (nothing recorded yet).
- Every change carries its evidence: the customer's keyword message (its id and a hash of its
  text, never the text), an agent's decision (who, and a note), a bulk import (the file's name and
  sha256, and the row), or Meta's refusal of a send (error 131050, and our message id).
- Changes are ordered by the time they happened (`at`); a change older than the current state's
  is kept in the history but does not change the state.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class State(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    UNKNOWN = "unknown"  # never recorded: the absence of any change, never a change itself


MARKETING = "marketing"
UTILITY = "utility"
REMINDERS = "reminders"


@dataclass(frozen=True)
class Purpose:
    name: str
    needs_grant: bool  # True: a send needs `granted`; False: only `withdrawn` refuses it
    description: str


# Add a purpose here (with its rule) to extend the ledger: the API, imports and the send policy
# read this table.
PURPOSES: dict[str, Purpose] = {
    p.name: p
    for p in (
        Purpose(MARKETING, True, "promotions and offers (Meta's MARKETING templates)"),
        Purpose(UTILITY, False, "messages about something the customer started: orders, bookings, accounts"),
        Purpose(REMINDERS, True, "scheduled reminders the customer signed up for"),
    )
}

# How a template's category (Meta's) maps to the purpose a send of it serves. AUTHENTICATION
# (one-time codes) answers the customer's own request and needs no consent.
CATEGORY_PURPOSE = {"MARKETING": MARKETING, "UTILITY": UTILITY}

NOTE_MAX = 500


class InvalidConsent(ValueError):
    """A change that cannot be recorded; `field` names what is wrong (never its value)."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


def parse_purpose(value) -> str:
    if not isinstance(value, str) or value not in PURPOSES:
        raise InvalidConsent("purpose", f"must be one of {', '.join(PURPOSES)}")
    return value


def parse_state(value) -> State:
    """A state a change may set: granted or withdrawn (`unknown` is never recorded)."""
    if value not in (State.GRANTED.value, State.WITHDRAWN.value):
        raise InvalidConsent("state", "must be granted or withdrawn")
    return State(value)


def parse_note(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > NOTE_MAX or any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise InvalidConsent("note", f"must be text of at most {NOTE_MAX} characters")
    return value


def text_sha256(text: str | None) -> str:
    """The evidence of what a customer wrote, without keeping the words themselves."""
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


# --- evidence -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeywordEvidence:
    """The customer sent a consent keyword (STOP, START, หยุด, …) as a whole message."""

    message_id: str  # the inbound wamid
    text_sha256: str
    language: str  # the language the keyword is configured under
    kind: str = field(default="keyword", init=False)


@dataclass(frozen=True)
class AgentEvidence:
    """A person of the business recorded the change (the customer told them, on a form, …)."""

    agent_id: str
    note: str | None = None
    kind: str = field(default="agent", init=False)


@dataclass(frozen=True)
class ImportEvidence:
    """A row of a bulk CSV import."""

    file_name: str
    file_sha256: str
    row: int  # the line of the file (the header is line 1)
    imported_by: str
    note: str | None = None
    kind: str = field(default="import", init=False)


@dataclass(frozen=True)
class PlatformEvidence:
    """Meta refused a send because the customer stopped marketing messages (error 131050)."""

    code: int
    message_id: str  # our outbound message Meta refused
    kind: str = field(default="meta_error", init=False)


Evidence = KeywordEvidence | AgentEvidence | ImportEvidence | PlatformEvidence
_EVIDENCE = {cls.kind: cls for cls in (KeywordEvidence, AgentEvidence, ImportEvidence, PlatformEvidence)}


def evidence_to_dict(evidence: Evidence) -> dict:
    return {k: v for k, v in asdict(evidence).items() if v is not None}


def evidence_from_dict(data: dict) -> Evidence:
    kind = data.get("kind")
    cls = _EVIDENCE.get(kind)
    if cls is None:
        raise ValueError(f"unknown consent evidence kind {kind!r}")
    values = {k: v for k, v in data.items() if k != "kind"}
    for name in ("row", "code"):
        if name in values:
            values[name] = int(values[name])
    return cls(**values)


# --- the change -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConsentChange:
    phone_number_id: str
    customer_id: str  # the customer's opaque id (its chat id)
    purpose: str
    state: State
    at: int  # when it happened (epoch seconds): orders changes of one purpose
    evidence: Evidence
    change_id: str  # the same evidence is the same change: recording it twice changes nothing

    def __post_init__(self):
        parse_purpose(self.purpose)
        if self.state is State.UNKNOWN:
            raise InvalidConsent("state", "must be granted or withdrawn")


def change_id_for(purpose: str, evidence: Evidence) -> str:
    """Deterministic where the evidence names one event (a message, Meta's refusal of one of our
    messages, a row of a file), so a retried webhook, send or upload is recorded once; each
    decision of an agent is its own change."""
    if isinstance(evidence, KeywordEvidence):
        basis = f"keyword\n{evidence.message_id}\n{purpose}"
    elif isinstance(evidence, PlatformEvidence):
        basis = f"meta\n{evidence.message_id}\n{evidence.code}\n{purpose}"
    elif isinstance(evidence, ImportEvidence):
        basis = f"import\n{evidence.file_sha256}\n{evidence.row}\n{purpose}"
    else:
        basis = f"agent\n{uuid.uuid4().hex}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def change(phone_number_id: str, customer_id: str, purpose: str, state: State, at: int, evidence: Evidence) -> ConsentChange:
    return ConsentChange(phone_number_id, customer_id, purpose, state, int(at), evidence, change_id_for(purpose, evidence))


def platform_opt_out(phone_number_id: str, customer_id: str, code: int, message_id: str, at: int) -> ConsentChange:
    """Meta's 131050: the customer stopped marketing messages in WhatsApp itself."""
    return change(phone_number_id, customer_id, MARKETING, State.WITHDRAWN, at, PlatformEvidence(code, message_id))


# --- what a send needs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ConsentRefusal:
    code: str  # "opted_out" | "no_consent"
    purpose: str
    message: str


def purposes_of_send(template_category: str | None, named_purpose: str | None) -> tuple[str, ...]:
    """The purposes a send serves: its template's category's (a marketing template is marketing
    whatever it is named for) and the one the send names (`purpose`, e.g. reminders)."""
    found = []
    from_category = CATEGORY_PURPOSE.get((template_category or "").upper())
    if from_category:
        found.append(from_category)
    if named_purpose and named_purpose not in found:
        found.append(named_purpose)
    return tuple(found)


def refusal(purpose: str, state: State | str) -> ConsentRefusal | None:
    """Whether a send for `purpose` may go to a customer whose consent for it is `state`."""
    state = State(state)
    rule = PURPOSES.get(purpose)
    if state is State.WITHDRAWN:
        return ConsentRefusal("opted_out", purpose, f"The customer withdrew consent to {purpose} messages.")
    if rule is not None and rule.needs_grant and state is not State.GRANTED:
        return ConsentRefusal(
            "no_consent", purpose,
            f"The customer never granted consent to {purpose} messages; record their consent first "
            f"(PUT /api/contacts/{{chat_id}}/consent, a START keyword, or an import).",
        )
    return None


def check_send(template_category: str | None, named_purpose: str | None, states: dict[str, str]) -> ConsentRefusal | None:
    """The first refusal among the purposes of a send; `states` maps purpose -> state (missing: unknown)."""
    for purpose in purposes_of_send(template_category, named_purpose):
        found = refusal(purpose, states.get(purpose, State.UNKNOWN))
        if found:
            return found
    return None
