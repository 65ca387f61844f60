"""The consent ledger through the real handlers on moto: an agent's change and its clear refusals,
keywords (English and Thai) recorded by the conversation workflow with their evidence, the bulk
CSV import with bad rows, and the ledger's ordering (a late older change, a duplicate)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from coexist import wiring
from coexist.domain import consent
from coexist.store.consent import Outcome
from functions.api import handler as api_function
from tests.conftest import API_TOKEN, Context, api_event
from tests.integration.helpers import api, chat_of, deliver, messages_of
from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message

OTHER_CUSTOMER = "16505550000"


def our_chat() -> str:
    return chat_of(NUMBER, CUSTOMER)


def call(method: str, path: str, body: bytes | dict | None = None, content_type: str = "application/json",
         agent: str | None = "ana", token: str = API_TOKEN) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    if agent:
        headers["X-Agent-Id"] = agent
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    response = api_function.lambda_handler(api_event(method, path, raw, headers), Context())
    return response["statusCode"], json.loads(response["body"])


def put(body: dict, agent: str | None = "ana", chat: str | None = None) -> tuple[int, dict]:
    return call("PUT", f"/api/contacts/{chat or our_chat()}/consent", body, agent=agent)


def ledger(chat: str | None = None, query: str = "") -> dict:
    status, body = api(f"/api/contacts/{chat or our_chat()}/consent{query}")
    assert status == 200, body
    return body


@pytest.fixture
def customer(aws):
    deliver(aws, text_message("wamid.hello", int(time.time())))
    return aws


# --- an agent's change -----------------------------------------------------------------------------

def test_an_agents_change_is_recorded_with_who_and_the_note_and_read_back_newest_first(customer):
    assert ledger()["purposes"] == {p: {"state": "unknown", "since": None, "change_id": None} for p in consent.PURPOSES}
    status, first = put({"purpose": "marketing", "state": "granted", "note": "signed the form at reception"})
    assert status == 200 and first["outcome"] == "applied"
    assert first["change"]["evidence"] == {"kind": "agent", "agent_id": "ana", "note": "signed the form at reception"}
    status, second = put({"purpose": "marketing", "state": "withdrawn"}, agent="ben")
    assert second["purposes"]["marketing"]["state"] == "withdrawn"
    view = ledger()
    assert view["purposes"]["marketing"]["change_id"] == second["change"]["change_id"]
    assert [(c["state"], c["evidence"]["agent_id"], c["applied"]) for c in view["history"]["items"]] == [
        ("withdrawn", "ben", True), ("granted", "ana", True)]
    assert view["history"]["next"] is None


def test_the_history_is_paged(customer):
    for state in ("granted", "withdrawn", "granted"):
        put({"purpose": "reminders", "state": state})
    first = ledger(query="?limit=2")
    assert len(first["history"]["items"]) == 2 and first["history"]["next"]
    rest = ledger(query=f"?limit=2&cursor={first['history']['next']}")
    ids = [c["change_id"] for c in first["history"]["items"] + rest["history"]["items"]]
    assert len(set(ids)) == 3
    # A cursor of another customer's history is refused.
    deliver(customer, text_message("wamid.other", int(time.time()), sender=OTHER_CUSTOMER))
    status, body = api(f"/api/contacts/{chat_of(NUMBER, OTHER_CUSTOMER)}/consent?cursor={first['history']['next']}")
    assert (status, body["code"]) == (400, "bad_request")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"purpose": "newsletters", "state": "granted"}, "purpose"),
        ({"state": "granted"}, "purpose"),
        ({"purpose": "marketing", "state": "unknown"}, "state"),
        ({"purpose": "marketing", "state": "yes"}, "state"),
        ({"purpose": "marketing", "state": "granted", "note": "x" * 501}, "note"),
        ({"purpose": "marketing", "state": "granted", "agent_id": "someone-else"}, "agent_id"),
    ],
)
def test_a_bad_change_is_a_422_naming_the_field_and_records_nothing(customer, body, field):
    status, answer = put(body)
    assert (status, answer["code"]) == (422, "invalid_consent")
    assert answer["errors"][0]["field"] == field and field in answer["message"]
    assert ledger()["history"]["items"] == []


def test_a_change_names_an_agent_and_a_chat_that_exists(customer):
    status, answer = put({"purpose": "marketing", "state": "granted"}, agent=None)  # the shared token alone
    assert (status, answer["code"]) == (400, "bad_request") and "X-Agent-Id" in answer["message"]
    assert put({"purpose": "marketing", "state": "granted"}, chat="c" + "z" * 24)[0] == 404
    assert put({"purpose": "marketing", "state": "granted"}, chat="not-a-chat")[0] == 404
    assert call("PUT", f"/api/contacts/{our_chat()}/consent", b"[1]")[0] == 400
    assert ledger()["history"]["items"] == []


# --- the ledger's ordering -------------------------------------------------------------------------

def test_a_late_older_change_is_kept_in_the_history_without_changing_the_state(customer):
    store = wiring.inbox().contacts.consent
    now = int(time.time())
    newer = consent.change(NUMBER, our_chat(), "marketing", consent.State.WITHDRAWN, now, consent.AgentEvidence("ana"))
    older = consent.change(NUMBER, our_chat(), "marketing", consent.State.GRANTED, now - 60, consent.AgentEvidence("ben"))
    assert store.record(newer) is Outcome.APPLIED
    assert store.record(older) is Outcome.SUPERSEDED
    view = ledger()
    assert view["purposes"]["marketing"]["state"] == "withdrawn"
    assert [(c["state"], c["applied"]) for c in view["history"]["items"]] == [("withdrawn", True), ("granted", False)]


def test_the_same_evidence_is_recorded_once_and_told_once(customer):
    told = []
    store = wiring.inbox().contacts.consent
    store.on_recorded = lambda change, outcome: told.append((change.change_id, outcome))
    keyword = consent.KeywordEvidence("wamid.stop", consent.text_sha256("STOP"), "en")
    change = consent.change(NUMBER, our_chat(), "marketing", consent.State.WITHDRAWN, int(time.time()), keyword)
    assert store.record(change) is Outcome.APPLIED
    assert store.record(change) is Outcome.DUPLICATE
    assert len(ledger()["history"]["items"]) == 1
    assert told == [(change.change_id, Outcome.APPLIED)]


# --- keywords, through the conversation workflow ----------------------------------------------------

@pytest.fixture
def conversation(monkeypatch):
    from local.workflows import EXECUTE_STATE_MACHINES
    from tests.conftest import emulated_account
    from tests.integration.test_conversation import FAST

    monkeypatch.setenv("COEXIST_CONVERSATION", json.dumps(FAST))
    with emulated_account(monkeypatch, config=EXECUTE_STATE_MACHINES, workflow=True) as emulated:
        yield emulated


def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_thai_and_english_keywords_are_recorded_with_the_message_and_a_hash_of_its_text(conversation):
    from coexist.bots.config import load_rules

    rules = load_rules()
    sent_at = int(time.time()) - 5
    deliver(conversation, text_message("wamid.th-stop", sent_at, body="หยุด"))
    changes = wait_for(lambda: ledger()["history"]["items"])
    [stop] = changes
    assert (stop["purpose"], stop["state"], stop["at"]) == ("marketing", "withdrawn", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent_at)))
    assert stop["evidence"] == {"kind": "keyword", "message_id": "wamid.th-stop", "language": "th",
                                "text_sha256": hashlib.sha256("หยุด".encode()).hexdigest()}
    # The bot acknowledges in the customer's language.
    wait_for(lambda: any(m["source"] == "bot" and m["text"] == rules.consent.opt_out_confirmation["th"] for m in messages_of(our_chat())))
    # The text itself is in the message, never in the ledger.
    assert "หยุด" not in json.dumps(ledger(), ensure_ascii=False)

    deliver(conversation, text_message("wamid.en-start", sent_at + 2, body="START"))
    wait_for(lambda: ledger()["purposes"]["marketing"]["state"] == "granted")
    assert ledger()["history"]["items"][0]["evidence"]["message_id"] == "wamid.en-start"
    wait_for(lambda: any(m["source"] == "bot" and m["text"] == rules.consent.opt_in_confirmation["en"] for m in messages_of(our_chat())))


# --- the bulk import -------------------------------------------------------------------------------

def upload(csv: str | bytes, file_name: str = "forms.csv", content_type: str = "text/csv", token: str = API_TOKEN, agent: str | None = "ada"):
    body = csv.encode() if isinstance(csv, str) else csv
    return call("POST", f"/api/consent/imports?file_name={file_name}", body, content_type=content_type, token=token, agent=agent)


def test_an_import_applies_the_good_rows_and_says_why_each_bad_one_was_rejected(customer):
    deliver(customer, text_message("wamid.other", int(time.time()), sender=OTHER_CUSTOMER))
    csv = (
        "phone_number_id,wa_id,purpose,state,note\n"              # line 1
        f"{NUMBER},{CUSTOMER},marketing,granted,paper form 7\n"    # 2: applied
        f"{NUMBER},+1 650-555-0000,reminders,granted,\n"           # 3: applied (formatted number)
        f"{NUMBER},{CUSTOMER},newsletters,granted,\n"              # 4: unknown purpose
        f"{NUMBER},{CUSTOMER},marketing,maybe,\n"                  # 5: bad state
        f"{NUMBER},19995550123,marketing,granted,\n"               # 6: applied: a new customer
        f"{NUMBER},,marketing,granted,\n"                          # 7: no identifier
        f"{NUMBER},not-a-phone,marketing,granted,\n"               # 8: not a phone number
        f"{NUMBER},{CUSTOMER},marketing,granted,a,b\n"             # 9: more cells than columns
        "\n"                                                       # a blank line: skipped
        f"{NUMBER},{CUSTOMER},utility,withdrawn,\n"                # 11: applied
    )
    status, report = upload(csv)
    assert status == 200
    assert report["file_sha256"] == hashlib.sha256(csv.encode()).hexdigest() and report["file_name"] == "forms.csv"
    assert (report["rows"], report["applied"], report["rejected"]) == (9, 4, 5)
    by_row = {r["row"]: r for r in report["results"]}
    assert [r for r, v in by_row.items() if v["status"] == "applied"] == [2, 3, 6, 11]
    assert by_row[4]["reason"].startswith("purpose:") and by_row[5]["reason"].startswith("state:")
    assert by_row[7]["reason"].startswith("wa_id or user_id")
    # Consent given before the first message: the number becomes a customer with its chat.
    assert by_row[6]["chat_id"] == chat_of(NUMBER, "19995550123")
    assert ledger(by_row[6]["chat_id"])["purposes"]["marketing"]["state"] == "granted"
    assert by_row[8]["reason"].startswith("wa_id:") and by_row[9]["status"] == "rejected"
    assert CUSTOMER not in json.dumps(report)  # the answer never repeats phone numbers

    view = ledger()
    assert (view["purposes"]["marketing"]["state"], view["purposes"]["utility"]["state"]) == ("granted", "withdrawn")
    marketing = next(c for c in view["history"]["items"] if c["purpose"] == "marketing")
    assert marketing["evidence"] == {"kind": "import", "file_name": "forms.csv", "file_sha256": report["file_sha256"],
                                     "row": 2, "imported_by": "ada", "note": "paper form 7"}
    assert ledger(chat_of(NUMBER, OTHER_CUSTOMER))["purposes"]["reminders"]["state"] == "granted"

    # The same file again records nothing twice.
    status, again = upload(csv)
    assert [r.get("outcome") for r in again["results"] if r["status"] == "applied"] == ["duplicate"] * 4
    assert len(ledger()["history"]["items"]) == 2


def test_an_import_is_for_admins_and_refuses_what_it_cannot_read(customer, monkeypatch):
    monkeypatch.setenv("COEXIST_AGENT_TOKEN_PREFIX", "local-agent-")
    wiring.reset()
    wiring.agents().upsert("ana", "Ana", ["general"], 3, [NUMBER])
    good = f"phone_number_id,wa_id,purpose,state\n{NUMBER},{CUSTOMER},marketing,granted\n"
    status, answer = upload(good, token="local-agent-ana", agent=None)
    assert (status, answer["code"]) == (403, "forbidden")
    assert upload(good, content_type="application/json")[0] == 415
    status, answer = upload("phone_number_id,purpose,state\n")
    assert (status, answer["code"]) == (422, "invalid_csv") and "wa_id or user_id" in answer["message"]
    status, answer = upload("phone_number_id,wa_id,purpose,state\n" + f"{NUMBER},{CUSTOMER},marketing,granted\n" * 2001)
    assert (status, answer["code"]) == (413, "too_large")
    assert upload(b"\xff\xfe not utf-8")[1]["code"] == "invalid_csv"
    assert ledger()["history"]["items"] == []  # nothing of a refused file was applied
