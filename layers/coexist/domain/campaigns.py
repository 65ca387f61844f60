"""Campaigns: one approved template sent to a list of customers, in pages (docs/ARCHITECTURE.md
rule 13). Pure: the recipient list as given in, the recipients to page through and the ones skipped
(with why) out; the campaign's states and which moves between them are allowed.

A recipient is skipped for a reason the campaign's progress counts:
- `invalid_number`: not a phone number WhatsApp could name (digits, 8 to 15 of them, E.164 without `+`);
- `duplicate`: the same number again in the list (the first one is kept);
- any refusal of the send policy (`domain/policy.check`), under the refusal's own code:
  `opted_out`, `no_consent`, `number_offboarded`, … A new refusal needs no change here.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from enum import StrEnum

from coexist.domain.identity import normalize_phone

INVALID_NUMBER = "invalid_number"
DUPLICATE = "duplicate"
# Meta's refusals a campaign most often meets, always shown (at 0) so a reader sees they were checked.
LISTED_SKIP_REASONS = (INVALID_NUMBER, DUPLICATE, "opted_out", "no_consent")
# A recipient whose data was erased (a customer's right to erasure) before its page ran.
ERASED = "erased"
E164_DIGITS = re.compile(r"[1-9]\d{7,14}")  # a country code never starts with 0; E.164 is at most 15 digits
MAX_PARAMETERS = 20
MAX_PARAMETER_LENGTH = 1024


class CampaignState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its start time
    RUNNING = "running"
    WAITING_FOR_MESSAGING_LIMIT = "waiting_for_messaging_limit"  # the portfolio's 24 h tier is used up
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"


# Who may move a campaign where: pause and resume only while it has work left; nothing leaves an end.
ACTIVE = frozenset({CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.WAITING_FOR_MESSAGING_LIMIT})
ENDED = frozenset({CampaignState.CANCELLED, CampaignState.FINISHED})
MOVES = {
    "pause": (ACTIVE, CampaignState.PAUSED),
    "resume": (frozenset({CampaignState.PAUSED}), CampaignState.RUNNING),
    "cancel": (ACTIVE | {CampaignState.PAUSED}, CampaignState.CANCELLED),
}


class BadRecipients(ValueError):
    """The list cannot be read at all (not a list, a CSV without a `wa_id` column, too many)."""


@dataclass(frozen=True)
class Recipient:
    wa_id: str  # digits only
    parameters: tuple[str, ...] = ()  # the template body's {{1}}, {{2}}, … for this recipient


@dataclass
class PreparedList:
    recipients: list[Recipient] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def targeted(self) -> int:
        return len(self.recipients) + sum(self.skipped.values())

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def phone_of(value) -> str | None:
    """The digits of a recipient's number if it can be one (`+1 650-555-1234` allowed), else None."""
    if not isinstance(value, str) or len(value) > 32 or re.search(r"[^\d+\-\s().]", value):
        return None
    digits = normalize_phone(value)
    return digits if E164_DIGITS.fullmatch(digits) else None


def _parameters(values) -> tuple[str, ...] | None:
    if values is None:
        return ()
    if not isinstance(values, (list, tuple)) or len(values) > MAX_PARAMETERS:
        return None
    if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) and len(str(v)) <= MAX_PARAMETER_LENGTH for v in values):
        return None
    return tuple(str(v) for v in values)


def prepare(entries: list, max_recipients: int) -> PreparedList:
    """Validate and deduplicate recipients given as `{"wa_id": …, "parameters": [...]}` (or a bare
    number). Order is kept; the first of two equal numbers is the one sent to."""
    if not isinstance(entries, list):
        raise BadRecipients("recipients must be a list")
    if len(entries) > max_recipients:
        raise BadRecipients(f"a campaign has at most {max_recipients} recipients")
    prepared, seen = PreparedList(), set()
    for entry in entries:
        raw, parameters = (entry.get("wa_id"), _parameters(entry.get("parameters"))) if isinstance(entry, dict) else (entry, ())
        wa_id = phone_of(raw)
        if wa_id is None or parameters is None:
            prepared.skip(INVALID_NUMBER)
        elif wa_id in seen:
            prepared.skip(DUPLICATE)
        else:
            seen.add(wa_id)
            prepared.recipients.append(Recipient(wa_id, parameters))
    return prepared


def entries_from_csv(text: str) -> list[dict]:
    """A CSV upload: a header row with `wa_id` (or `phone`), the other columns the body parameters
    in their order. A row with a wrong number of columns keeps its number and is judged as given."""
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    if not rows:
        raise BadRecipients("the CSV is empty")
    header = [h.strip().lower() for h in rows[0]]
    column = next((header.index(name) for name in ("wa_id", "phone", "phone_number") if name in header), None)
    if column is None:
        raise BadRecipients("the CSV needs a header row with a wa_id column")
    entries = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        number = row[column].strip() if column < len(row) else ""
        parameters = [cell.strip() for i, cell in enumerate(row) if i != column]
        entries.append({"wa_id": number, "parameters": parameters})
    return entries


def pages(count: int, page_size: int) -> int:
    return (count + page_size - 1) // page_size


def skip_reason(refusal_code: str) -> str:
    """A policy refusal counted as a skip: under its own code, whatever the policy adds later."""
    return refusal_code


def may_move(action: str, state: CampaignState, still_sending: bool = False) -> CampaignState | None:
    """The state `action` (pause | resume | cancel) moves the campaign to, or None if it may not.
    `still_sending`: messages of the campaign still wait for the sender. A finished campaign has run
    every page, but a large one's messages may wait for hours behind the number's throughput: until
    they have gone, it can still be cancelled (the sender fails what is left)."""
    allowed_from, target = MOVES[action]
    if action == "cancel" and state is CampaignState.FINISHED and still_sending:
        return target
    return target if state in allowed_from else None
