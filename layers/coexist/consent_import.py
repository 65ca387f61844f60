"""A bulk consent import: a CSV file of consent collected elsewhere (a form, a previous system),
applied row by row to the consent ledger with the file as evidence.

Columns: `phone_number_id`, `wa_id` (or `user_id`, the customer's BSUID), `purpose`, `state`
(`granted` | `withdrawn`), optional `note`; other columns are ignored. Each row is checked and
recorded on its own, so a bad row is reported and never costs the good ones. A phone number nobody
is known by yet on one of this deployment's numbers becomes a customer (consent is often collected
before the first message: a paper form, a sign-up list), so campaigns and reminders can reach them;
a BSUID must already be known (it comes only from Meta).
Each row's evidence is the file's name and sha256 and the row's line, so uploading the same file
again records nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from coexist.customers import chat_for_phone
from coexist.domain import consent
from coexist.domain.identity import Kind, kind_of, normalize_phone
from coexist.inbox import Inbox
from coexist.store.consent import ConsentLedger, Outcome

MAX_BYTES = 256 * 1024
MAX_ROWS = 2000
MAX_ID = 128
REQUIRED_COLUMNS = ("phone_number_id", "purpose", "state")


class ImportRefused(Exception):
    """The file as a whole cannot be imported (nothing was applied); `status` is the HTTP status."""

    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class RowResult:
    row: int  # the line of the file (the header is line 1)
    status: str  # "applied" | "rejected"
    reason: str | None = None
    outcome: str | None = None  # for an applied row: applied, superseded (an older change) or duplicate
    chat_id: str | None = None

    def view(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ImportReport:
    file_name: str
    file_sha256: str
    results: list[RowResult] = field(default_factory=list)

    def view(self) -> dict:
        applied = sum(1 for r in self.results if r.status == "applied")
        return {
            "file_name": self.file_name, "file_sha256": self.file_sha256, "rows": len(self.results),
            "applied": applied, "rejected": len(self.results) - applied, "results": [r.view() for r in self.results],
        }


class RowRejected(Exception):
    pass


def read_rows(body: bytes) -> list[tuple[int, dict]]:
    """(line, row) for every data row, or ImportRefused for a file that is not one we can read."""
    if len(body) > MAX_BYTES:
        raise ImportRefused("too_large", f"the file must be at most {MAX_BYTES} bytes; split it", 413)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("invalid_csv", "the file must be UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if "wa_id" not in columns and "user_id" not in columns:
        missing.append("wa_id or user_id")
    if missing:
        raise ImportRefused("invalid_csv", f"the header row lacks: {', '.join(missing)}")
    rows = []
    try:
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # a blank line
            rows.append((reader.line_num, row))
            if len(rows) > MAX_ROWS:
                raise ImportRefused("too_large", f"the file must hold at most {MAX_ROWS} rows; split it", 413)
    except csv.Error as error:
        raise ImportRefused("invalid_csv", f"line {reader.line_num}: {error}") from None
    return rows


class ConsentImport:
    def __init__(self, inbox: Inbox, clock=time.time):
        self.inbox = inbox
        self.customers = inbox.customers
        self.ledger: ConsentLedger = inbox.contacts.consent
        self.clock = clock

    def apply(self, body: bytes, file_name: str, imported_by: str) -> ImportReport:
        rows = read_rows(body)
        report = ImportReport(file_name, hashlib.sha256(body).hexdigest())
        at = int(self.clock())
        for line, row in rows:
            report.results.append(self._row(line, row, report, imported_by, at))
        return report

    def _row(self, line: int, row: dict, report: ImportReport, imported_by: str, at: int) -> RowResult:
        try:
            number, customer_id, purpose, state, note = self._parse(row)
        except (RowRejected, consent.InvalidConsent) as problem:
            return RowResult(line, "rejected", str(problem))
        evidence = consent.ImportEvidence(report.file_name, report.file_sha256, line, imported_by, note)
        try:
            outcome = self.ledger.record(consent.change(number, customer_id, purpose, state, at, evidence))
        except ClientError as error:
            return RowResult(line, "rejected", f"not stored ({error.response.get('Error', {}).get('Code', 'error')}); import the file again")
        return RowResult(line, "applied", outcome=Outcome(outcome).value, chat_id=customer_id)

    def _parse(self, row: dict):
        if row.get(None):  # csv's place for the cells beyond the header's columns
            raise RowRejected("the row has more cells than the header has columns")
        number = _cell(row, "phone_number_id")
        if not number:
            raise RowRejected("phone_number_id: required")
        wa_id, user_id = _cell(row, "wa_id"), _cell(row, "user_id")
        if wa_id:
            if kind_of(wa_id) is not Kind.PHONE:
                raise RowRejected("wa_id: must be a phone number in international format (digits)")
            customer = self.customers.find(number, Kind.PHONE, normalize_phone(wa_id))
        elif user_id:
            if kind_of(user_id) is not Kind.BSUID:
                raise RowRejected("user_id: must be a business-scoped user id (e.g. US.1234…)")
            customer = self.customers.find(number, Kind.BSUID, user_id)
        else:
            raise RowRejected("wa_id or user_id: required")
        purpose = consent.parse_purpose(_cell(row, "purpose"))
        state = consent.parse_state(_cell(row, "state"))
        note = consent.parse_note(_cell(row, "note", consent.NOTE_MAX))
        if customer is not None:
            return number, customer.customer_id, purpose, state, note
        if not wa_id:
            raise RowRejected("unknown_customer: nobody known by that user id on this number (import after they wrote or after the history sync)")
        if self.inbox.numbers.get(number) is None:
            raise RowRejected("phone_number_id: not a number of this deployment (no webhook has named it)")
        # A consent given before the first message (a paper form, a sign-up list): the customer is
        # created as a first webhook would create them, so a campaign or reminder can reach them.
        return number, chat_for_phone(self.inbox, number, normalize_phone(wa_id)).chat_id, purpose, state, note


def _cell(row: dict, name: str, max_length: int = MAX_ID) -> str | None:
    value = row.get(name)
    if value is None:
        return None
    if not isinstance(value, str):  # a row with more cells than the header has
        raise RowRejected(f"{name}: one value expected")
    value = value.strip()
    if len(value) > max_length:
        raise RowRejected(f"{name}: at most {max_length} characters")
    return value or None
