"""The consent ledger over HTTP in local mode: an agent's change with its evidence, a bulk import,
and the marketing sends the policy refuses (409 `no_consent`, then `opted_out`) before any call to
the Meta sandbox."""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import API_TOKEN, wait_until
from tests.e2e.test_sending import COEXISTENCE, SALE, customers, message, sandbox_messages_to, seed_chats, send

pytestmark = pytest.mark.e2e


def call(local, method: str, path: str, body: bytes | None = None, content_type: str = "application/json", agent: str = "ana"):
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": content_type, "X-Agent-Id": agent}
    reply = local.request(method, path, body, headers)
    return reply.status, reply.json()


def test_consent_changes_carry_their_evidence_and_refuse_marketing(local_mode):
    wa_ids = customers(2)
    chat, other = seed_chats(local_mode, COEXISTENCE, wa_ids)

    status, refusal = send(local_mode, chat, SALE)
    assert (status, refusal["code"]) == (409, "no_consent")  # nobody granted marketing yet

    status, changed = call(local_mode, "PUT", f"/api/contacts/{chat}/consent",
                           json.dumps({"purpose": "marketing", "state": "granted", "note": "form 12"}).encode())
    assert status == 200 and changed["purposes"]["marketing"]["state"] == "granted"
    status, accepted = send(local_mode, chat, SALE)
    assert status == 202

    status, changed = call(local_mode, "PUT", f"/api/contacts/{chat}/consent",
                           json.dumps({"purpose": "marketing", "state": "withdrawn", "note": "asked on the phone"}).encode(), agent="ben")
    assert status == 200
    status, refusal = send(local_mode, chat, SALE)
    assert (status, refusal["code"]) == (409, "opted_out")

    status, ledger = call(local_mode, "GET", f"/api/contacts/{chat}/consent?limit=1")
    assert status == 200 and ledger["purposes"]["marketing"]["state"] == "withdrawn"
    assert ledger["purposes"]["reminders"]["state"] == "unknown"
    [newest] = ledger["history"]["items"]
    assert newest["evidence"] == {"kind": "agent", "agent_id": "ben", "note": "asked on the phone"}
    status, older = call(local_mode, "GET", f"/api/contacts/{chat}/consent?limit=1&cursor={ledger['history']['next']}")
    assert [c["evidence"]["agent_id"] for c in older["history"]["items"]] == ["ana"]

    # An import grants the other customer and a number that never wrote (consent before the first
    # message); its bad rows are reported and cost the good ones nothing.
    csv = (f"phone_number_id,wa_id,purpose,state,note\n"
           f"{COEXISTENCE[0]},{wa_ids[1]},marketing,granted,paper form\n"
           f"{COEXISTENCE[0]},{wa_ids[1]},newsletters,granted,\n"
           f"{COEXISTENCE[0]},4400000000,marketing,granted,\n"
           f"999999,4400000001,marketing,granted,\n").encode()
    status, report = call(local_mode, "POST", "/api/consent/imports?file_name=forms.csv", csv, content_type="text/csv")
    assert status == 200 and (report["applied"], report["rejected"]) == (2, 2)
    assert [r["status"] for r in report["results"]] == ["applied", "rejected", "applied", "rejected"]
    assert report["results"][3]["reason"].startswith("phone_number_id: not a number of this deployment")
    assert send(local_mode, other, SALE)[0] == 202

    # The refused sends never reached Meta: only the accepted one did.
    wait_until(lambda: message(local_mode, chat, accepted["id"]).get("status") in ("sent", "delivered", "read"), timeout=30)
    assert len(sandbox_messages_to(local_mode, wa_ids[0])) == 1
