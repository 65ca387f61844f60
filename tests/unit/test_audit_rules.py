"""The audit trail's rules on their own: which decisions are recorded, what an entry says, that the
gate records before it answers (refusals too), and that an entry it cannot write stops the request;
and that a customer's rights are an admin's."""

from __future__ import annotations

import pytest

from coexist.authorization import Forbidden, Gate
from coexist.domain.access import ADMIN_CHAT_ACTIONS, Action, ChatFacts, Principal, Role, check
from coexist.domain.audit import AuditEntry, AuditUnavailable, Caller, Outcome, is_audited, recorder
from coexist.domain.chat import Chat

NUMBER = "106540352242922"
CHAT_ID = "cabcdefghijklmnopqrstuvwx"


def gate_for(principal: Principal, write) -> Gate:
    chat = Chat(phone_number_id=NUMBER, wa_id=None, chat_id=CHAT_ID)
    return Gate(principal, lambda chat_id: chat if chat_id == CHAT_ID else None, lambda _: None, frozenset(),
                audit=recorder(write, Caller(principal.agent_id or "api-token", principal.role.name.lower() if principal.role else None,
                                             "203.0.113.9", "console/1", "GET /api/chats/x", "req-1")))


def test_every_action_is_audited_but_the_two_reads_without_customer_data():
    assert {a for a in Action if not is_audited(a)} == {Action.READ_DIRECTORY, Action.READ_TEMPLATES}
    assert is_audited("change_consent")  # an action added later is recorded unless said otherwise


def test_the_gate_records_an_allowed_read_with_who_where_and_which_chat():
    written: list[AuditEntry] = []
    gate_for(Principal("ana", Role.AGENT, frozenset({NUMBER})), written.append).chat(CHAT_ID, Action.READ_CHAT)
    [entry] = written
    assert (entry.caller.actor, entry.caller.role, entry.action, entry.outcome, entry.chat_id) == (
        "ana", "agent", "read_chat", Outcome.ALLOWED, CHAT_ID)
    assert (entry.caller.source_ip, entry.caller.user_agent, entry.detail) == ("203.0.113.9", "console/1", {"phone_number_id": NUMBER})
    assert entry.sort_key.startswith(entry.at.strftime("%Y-%m-%dT%H:%M:%S.")) and entry.sort_key.endswith(entry.entry_id)


def test_a_refusal_is_recorded_before_the_gate_refuses():
    written: list[AuditEntry] = []
    with pytest.raises(Forbidden):
        gate_for(Principal("zed", Role.AGENT, frozenset({"other"})), written.append).chat(CHAT_ID, Action.SEND)
    [entry] = written
    assert entry.outcome is Outcome.REFUSED and "not assigned to you" in entry.reason


def test_an_entry_that_cannot_be_written_stops_the_request():
    def unavailable(_entry):
        raise AuditUnavailable("ResourceNotFoundException")

    gate = gate_for(Principal("ana", Role.AGENT, frozenset({NUMBER})), unavailable)
    with pytest.raises(AuditUnavailable):
        gate.chat(CHAT_ID, Action.SEND)


def test_the_directory_read_is_not_recorded():
    written: list[AuditEntry] = []
    gate_for(Principal("ana", Role.AGENT), written.append).allow(Action.READ_DIRECTORY)
    assert written == []


@pytest.mark.parametrize("action", sorted(ADMIN_CHAT_ACTIONS | {Action.READ_AUDIT}, key=lambda a: a.value))
def test_the_trail_and_a_customers_rights_are_an_admins(action):
    chat = ChatFacts(CHAT_ID, NUMBER)
    resource = None if action is Action.READ_AUDIT else chat
    assert check(Principal("ada", Role.ADMIN), action, resource) is None
    for role in (Role.SUPERVISOR, Role.AGENT):
        refusal = check(Principal("sue", role, frozenset({NUMBER})), action, resource)
        assert refusal is not None and "admin" in refusal.message
