"""Retention over the real API handler, retention function and tables: a closed chat's messages get
their expiry once the chat has been quiet for the retention; never while it is open or under a legal
hold; a hold takes back an expiry already given and lifting it gives it back; reopening clears it.
Other tables' records carry their expiry from the moment they are written."""

from __future__ import annotations

import time

import pytest

from coexist import resources, wiring
from coexist.domain.retention import DAY_S
from functions.retention import handler as retention_function
from tests.conftest import Context
from tests.integration.helpers import chat_of, deliver
from tests.integration.test_api_access import CHAT, call, deployed  # noqa: F401 - the fixture
from tests.integration.test_ingest import CUSTOMER, NUMBER, text_message

RETENTION_DAYS = 30


@pytest.fixture
def kept_30_days(deployed, monkeypatch):
    monkeypatch.setenv(resources.MESSAGES.retention_env, str(RETENTION_DAYS))
    wiring.reset()
    deliver(deployed, text_message("wamid.second", int(time.time()), body="my results"))
    return deployed


def sweep(days_later: float) -> dict:
    """Run the retention function as its daily schedule does, `days_later` days from now."""
    wiring.retention_sweeper().clock = lambda: time.time() + days_later * DAY_S
    outcome = retention_function.lambda_handler({"source": "aws.events"}, Context())
    assert outcome.pop("erasures") == {"erasures_replayed": 0}  # no customer erased here
    return outcome


def expiries(aws) -> dict[str, int | None]:
    table = aws.dynamodb.Table(aws.env["MESSAGES_TABLE"])
    chat_id = chat_of(NUMBER, CUSTOMER)
    return {i["id"]: (int(i["expires_at"]) if "expires_at" in i else None)
            for i in table.scan()["Items"] if i.get("chat_id") == chat_id}


def close(aws) -> int:
    status, chat = call("ben", "POST", f"/api/chats/{CHAT}/close")
    assert status == 200 and chat["mode"] == "closed", chat
    return int(time.time())


def test_a_closed_chats_messages_expire_once_it_has_been_quiet_for_the_retention(kept_30_days):
    assert sweep(RETENTION_DAYS + 1).get("expire", 0) == 0  # open: nothing expires, however old
    assert set(expiries(kept_30_days).values()) == {None}

    closed_at = close(kept_30_days)
    assert sweep(RETENTION_DAYS - 1).get("expire", 0) == 0  # not quiet long enough yet
    assert set(expiries(kept_30_days).values()) == {None}

    outcome = sweep(RETENTION_DAYS + 1)
    assert outcome["expire"] == 1 and outcome["messages_stamped"] == 2
    stamped = expiries(kept_30_days)
    assert set(stamped) == {"wamid.access", "wamid.second"}
    [expires] = set(stamped.values())
    assert closed_at + RETENTION_DAYS * DAY_S - 5 <= expires <= closed_at + RETENTION_DAYS * DAY_S + 5
    assert sweep(RETENTION_DAYS + 2).get("messages_stamped", 0) == 0  # once: the chat left the index


def test_a_legal_hold_suspends_the_expiry_and_lifting_it_restores_it(kept_30_days):
    close(kept_30_days)
    assert call("ada", "PUT", f"/api/chats/{CHAT}/legal-hold", {"reason": "case 7"})[0] == 200
    assert sweep(RETENTION_DAYS + 1)["held"] == 1
    assert set(expiries(kept_30_days).values()) == {None}
    assert sweep(RETENTION_DAYS + 2) == {"retention_days": RETENTION_DAYS}  # set aside: not read again while held

    assert call("ada", "DELETE", f"/api/chats/{CHAT}/legal-hold")[0] == 200
    assert sweep(RETENTION_DAYS + 1)["expire"] == 1
    assert None not in expiries(kept_30_days).values()


def test_a_hold_set_after_the_expiry_was_given_takes_it_back_until_lifted(kept_30_days):
    close(kept_30_days)
    sweep(RETENTION_DAYS + 1)
    assert None not in expiries(kept_30_days).values()

    assert call("ada", "PUT", f"/api/chats/{CHAT}/legal-hold", {"reason": "subpoena"})[0] == 200
    assert set(expiries(kept_30_days).values()) == {None}
    assert sweep(RETENTION_DAYS + 2).get("expire", 0) == 0
    assert set(expiries(kept_30_days).values()) == {None}

    call("ada", "DELETE", f"/api/chats/{CHAT}/legal-hold")
    assert sweep(RETENTION_DAYS + 3)["expire"] == 1
    assert None not in expiries(kept_30_days).values()


def test_a_reopened_chat_keeps_its_messages(kept_30_days):
    close(kept_30_days)
    chat_id = chat_of(NUMBER, CUSTOMER)
    chats = kept_30_days.dynamodb.Table(kept_30_days.env["CHATS_TABLE"])
    assert "retention_from" in chats.get_item(Key={"chat_id": chat_id})["Item"]
    assert wiring.inbox().chats.begin(chat_id)  # a new conversation starts with the bot
    assert "retention_from" not in chats.get_item(Key={"chat_id": chat_id})["Item"]
    assert sweep(RETENTION_DAYS + 1).get("expire", 0) == 0
    assert set(expiries(kept_30_days).values()) == {None}


def test_a_message_after_the_close_starts_the_quiet_period_again(kept_30_days):
    close(kept_30_days)
    later = int(time.time()) + 10 * DAY_S
    deliver(kept_30_days, text_message("wamid.late", later, body="one more thing"))  # before any new conversation
    assert sweep(RETENTION_DAYS + 1)["not_yet"] == 1
    assert set(expiries(kept_30_days).values()) == {None}
    assert sweep(RETENTION_DAYS + 11)["expire"] == 1
    assert set(expiries(kept_30_days).values()) == {later + RETENTION_DAYS * DAY_S}


def test_an_app_echo_on_a_closed_chat_takes_it_out_of_retention(kept_30_days):
    from tests.integration.test_ingest import echo

    close(kept_30_days)
    deliver(kept_30_days, echo("wamid.echo", int(time.time())))
    assert sweep(RETENTION_DAYS + 1)["open"] == 1
    assert set(expiries(kept_30_days).values()) == {None}
    chats = kept_30_days.dynamodb.Table(kept_30_days.env["CHATS_TABLE"])
    assert "retention_shard" not in chats.get_item(Key={"chat_id": chat_of(NUMBER, CUSTOMER)})["Item"]


def test_audit_entries_and_export_requests_carry_their_expiry_from_when_written(deployed):
    before = int(time.time())
    assert call("ada", "GET", f"/api/chats/{CHAT}")[0] == 200
    status, job = call("ada", "POST", f"/api/chats/{CHAT}/exports")
    assert status == 202
    audit = deployed.dynamodb.Table(deployed.env["AUDIT_TABLE"]).scan()["Items"]
    assert audit and all(before + 6 * 365 * DAY_S - 5 <= int(e["expires_at"]) <= before + 6 * 365 * DAY_S + 5 for e in audit)
    privacy = deployed.dynamodb.Table(deployed.env["PRIVACY_TABLE"])
    export = privacy.get_item(Key={"pk": f"export#{job['export_id']}", "sk": "export"})["Item"]
    assert before + 30 * DAY_S - 5 <= int(export["expires_at"]) <= before + 30 * DAY_S + 5
    call("ada", "PUT", f"/api/chats/{CHAT}/legal-hold", {"reason": "kept"})
    hold = privacy.get_item(Key={"pk": f"chat#{chat_of(NUMBER, CUSTOMER)}", "sk": "hold"})["Item"]
    assert "expires_at" not in hold  # holds never expire


def test_an_audit_entry_removed_by_its_ttl_is_archived_as_expired_not_as_tampering(deployed):
    from functions.audit_archive import handler as audit_archive_function
    from tests.integration.test_audit_trail import stream_records

    call("ana", "GET", f"/api/chats/{CHAT}")
    table = deployed.dynamodb.Table(deployed.env["AUDIT_TABLE"])
    [entry] = [i for i in table.scan()["Items"] if i["actor"] == "ana"]
    table.delete_item(Key={"day": entry["day"], "at": entry["at"]})  # someone going around the API
    [removal] = [r for r in stream_records(deployed) if r["eventName"] == "REMOVE"]
    assert audit_archive_function.lambda_handler({"Records": [removal]}, Context())["altered"] == 1

    by_ttl = {**removal, "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"}}
    result = audit_archive_function.lambda_handler({"Records": [by_ttl]}, Context())
    assert result["altered"] == 0 and result["archived"] == 1  # the removal is still kept in the locked copy


def test_cost_ledger_entries_expire_two_years_after_the_pricing(deployed):
    from tests.integration.test_ingest import echo

    deliver(deployed, echo("wamid.app-reply", int(time.time())))  # a reply from the phone app: a free entry
    [entry] = deployed.dynamodb.Table(deployed.env["COSTS_TABLE"]).scan()["Items"]
    assert int(entry["expires_at"]) == int(entry["at"]) + 2 * 365 * DAY_S
