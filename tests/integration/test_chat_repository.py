"""The chat repository on the emulated table: moves are conditional on the mode they start from, so a
racing change of hands is refused instead of overwritten; the free entry point of an ad referral."""

from __future__ import annotations

import time

import pytest

from coexist import wiring
from coexist.domain.chat import ChatMode, ConversationState, WaitingFor
from coexist.domain.records import ChatActivity
from coexist.domain.window import FREE_ENTRY_POINT_WINDOW_S
from coexist.reads import iso
from coexist.store.chats import CARRIED_TEXT_MAX_BYTES, BotHold, DuplicateTurn, WaitingMessage
from coexist.store.messages import OutboundMessage
from coexist.store.task_tokens import TaskTokens, ref
from tests.integration.helpers import CountingTable

NUMBER, CUSTOMER = "106540352242922", "16505551234"
CHAT = "c" + "customer".ljust(24, "q")  # the customer's opaque id (store/customers.py gives one)
NOW = 1_800_000_000


def repository():
    chats = wiring.inbox().chats
    chats.clock = lambda: NOW
    return chats


def customer_wrote(chats, at=NOW - 60):
    chats.record_activity(ChatActivity(NUMBER, CUSTOMER, chat_id=CHAT, last_message_at=at, last_customer_message_at=at))


def test_a_new_chat_starts_with_the_bot_and_reads_back_typed(aws):
    chats = repository()
    customer_wrote(chats)
    chat = chats.get(CHAT)
    assert (chat.mode, chat.chat_id, chat.last_customer_message_at, chat.created_at) == (ChatMode.BOT, CHAT, NOW - 60, NOW)
    assert chat.waiting_for is None and chat.pending_messages == frozenset() and not chat.live
    assert chats.get("c" + "nobody".ljust(24, "q")) is None and chats.get(f"{NUMBER}_{CUSTOMER}") is None and chats.get("not-a-chat-id") is None


def test_a_customer_message_in_the_second_of_the_last_reply_moves_the_window_in_one_write(aws):
    chats = repository()
    customer_wrote(chats)
    chats.raise_last_message(CHAT, NOW)  # the bot's answer
    table = chats.table
    chats.table = counted = CountingTable(table)
    try:
        customer_wrote(chats, at=NOW)  # the customer's next message, in that same second
    finally:
        chats.table = table
    chat = chats.get(CHAT)
    assert (chat.last_customer_message_at, chat.last_message_at) == (NOW, NOW)
    assert counted.calls.count("update_item") == 1  # not refused for the recency it holds already, then written again


def test_an_agent_picking_up_a_chat_the_phone_app_just_took_is_refused(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.queue(CHAT) and chats.give_up(CHAT)  # nobody accepted
    chats.record_activity(ChatActivity(NUMBER, CUSTOMER, chat_id=CHAT, last_app_activity_at=NOW))  # then the phone answered
    assert not chats.pick_up(CHAT, "agent-7")
    chat = chats.get(CHAT)
    assert chat.mode == ChatMode.APP and chat.assignee is None


def test_an_acceptance_already_signalled_stands_over_a_later_echo(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.queue(CHAT) and chats.offer(CHAT, "conv-1", "agent-7", "token-1")
    assert chats.take_token(CHAT, WaitingFor.ACCEPT, offered_to="agent-7") == "token-1"  # the agent accepted
    chats.record_activity(ChatActivity(NUMBER, CUSTOMER, chat_id=CHAT, last_app_activity_at=NOW))  # an echo, before the step ran
    assert chats.hand_to_agent(CHAT, "agent-7")
    chat = chats.get(CHAT)
    assert (chat.mode, chat.assignee, chat.offered_to) == (ChatMode.AGENT, "agent-7", None)


def test_the_bot_never_takes_a_chat_back_from_an_agent(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.take_over(CHAT, by_agent="agent-7")
    assert not chats.resume_bot(CHAT) and not chats.begin(CHAT)
    assert chats.get(CHAT).mode == ChatMode.AGENT and chats.get(CHAT).assignee == "agent-7"


def test_closing_by_an_agent_needs_no_live_conversation_and_an_open_chat(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1")
    assert not chats.close(CHAT)  # the workflow holds it: only its own end closes it
    assert chats.end(CHAT)
    chat = chats.get(CHAT)
    assert (chat.mode, chat.conversation_state, chat.closed_at) == (ChatMode.CLOSED, ConversationState.ENDED, NOW)
    assert not chats.close(CHAT)  # closed already


def test_a_token_is_taken_once_and_only_by_whom_it_waits_for(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.queue(CHAT)
    assert not chats.offer(CHAT, "conv-other", "agent-7", "token-x")  # another conversation's step
    assert chats.offer(CHAT, "conv-1", "agent-7", "token-1")
    assert chats.take_token(CHAT, WaitingFor.ACCEPT, offered_to="agent-8") is None
    assert chats.take_token(CHAT, WaitingFor.AGENT) is None
    assert chats.take_token(CHAT, WaitingFor.ACCEPT, offered_to="agent-7") == "token-1"
    assert chats.take_token(CHAT, WaitingFor.ACCEPT, offered_to="agent-7") is None


def test_a_reply_within_24_hours_of_an_ad_referral_opens_the_free_entry_point(aws):
    chats = repository()
    referral = NOW - 3600
    chats.record_activity(ChatActivity(NUMBER, CUSTOMER, chat_id=CHAT, last_message_at=referral, last_customer_message_at=referral,
                                       referral_at=referral))
    assert not chats.note_entry_point_reply(CHAT, referral - 10)  # before the referral: not an answer to it
    assert chats.note_entry_point_reply(CHAT, NOW)
    assert not chats.note_entry_point_reply(CHAT, NOW + 60)  # the first reply counts
    view = wiring.inbox_reader().chat(CHAT)
    assert view["free_entry_point_expires_at"] == iso(NOW + FREE_ENTRY_POINT_WINDOW_S)


def test_a_reply_a_day_after_the_referral_opens_nothing(aws):
    chats = repository()
    referral = NOW - 25 * 3600
    chats.record_activity(ChatActivity(NUMBER, CUSTOMER, chat_id=CHAT, last_message_at=referral, referral_at=referral))
    assert not chats.note_entry_point_reply(CHAT, NOW)
    assert wiring.inbox_reader().chat(CHAT)["free_entry_point_expires_at"] is None


def test_a_field_whose_name_begins_with_another_placeholder_is_written(aws):
    """`#mode` is a prefix of `#mode_note`: the update names only the placeholders it uses, or
    DynamoDB refuses it for an unused attribute name."""
    chats = repository()
    customer_wrote(chats)
    assert chats._set(CHAT, {"mode_note": "from the phone"})
    assert chats.table.get_item(Key={"chat_id": CHAT})["Item"]["mode_note"] == "from the phone"


def test_a_bot_turn_starts_in_one_write_and_waits_for_the_customer_only_when_nothing_came_meanwhile(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.add_pending(CHAT, "wamid.A") and chats.add_pending(CHAT, "wamid.B")
    assert chats.start_bot_turn(CHAT, "conv-other", "token-1") is None  # not this chat's conversation
    chat, pending = chats.start_bot_turn(CHAT, "conv-1", "token-1")
    assert (chat.chat_id, chat.conversation_id, pending) == (CHAT, "conv-1", [WaitingMessage("wamid.A"), WaitingMessage("wamid.B")])
    # The chat holds the token's reference; the token is kept in its own table (store/task_tokens.py).
    assert chats.get(CHAT).bot_token == ref("token-1") and chats.get(CHAT).pending_messages == frozenset()
    # A message arrived while the bot answered: the token does not wait, the next turn takes it.
    assert chats.add_pending(CHAT, "wamid.C")
    assert not chats.await_customer(CHAT, "conv-1", "token-1", 0, {"step": "hours"}, "opening_hours")
    assert chats.get(CHAT).waiting_for is None and chats.get(CHAT).bot_failures == 0
    _, pending = chats.start_bot_turn(CHAT, "conv-1", "token-2")
    assert pending == [WaitingMessage("wamid.C")]
    assert not chats.await_customer(CHAT, "conv-1", "token-1", 1, {}, None)  # an older turn's token is not parked
    assert chats.await_customer(CHAT, "conv-1", "token-2", 1, {"step": "asked"}, "book")
    chat = chats.get(CHAT)
    assert (chat.waiting_for, chat.bot_token, chat.bot_failures, chat.bot_session, chat.bot_intent) == \
        (WaitingFor.CUSTOMER, None, 1, {"step": "asked"}, "book")
    assert chats.take_token(CHAT, WaitingFor.CUSTOMER) == "token-2"  # the customer's next message wakes it


def test_a_bot_turn_on_an_erased_chat_writes_nothing(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.erase(CHAT)
    assert chats.start_bot_turn(CHAT, "conv-1", "token-1") is None
    assert not chats.await_customer(CHAT, "conv-1", "token-1")
    assert chats.get(CHAT) is None


def test_a_bot_turn_delivered_twice_starts_once_and_lambdas_retry_of_it_starts_again(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1", "wamid.A", asked("Hours?"))
    _, pending = chats.start_bot_turn(CHAT, "conv-1", "token-1", turn="invocation-1")
    assert [m.id for m in pending] == ["wamid.A"]
    # A second invocation of the same turn (a retried begin) finds the first one holding the token.
    with pytest.raises(DuplicateTurn):
        chats.start_bot_turn(CHAT, "conv-1", "token-1", turn="invocation-2")
    assert chats.get(CHAT).bot_token == ref("token-1")
    # Lambda's retry of the first invocation (same id) starts again, and sees the token it held.
    chat, pending = chats.start_bot_turn(CHAT, "conv-1", "token-1", turn="invocation-1")
    assert chat.bot_token == ref("token-1") and pending == []
    # Once the turn parked the token for the customer, a late second delivery takes nothing.
    assert chats.add_pending(CHAT, "wamid.B", asked("And Sundays?"))
    assert not chats.await_customer(CHAT, "conv-1", "token-1")  # wamid.B waits: the token does not
    assert chats.take_bot_token(CHAT, expected="token-1")  # the turn hands the token to the next one
    _, pending = chats.start_bot_turn(CHAT, "conv-1", "token-1", turn="invocation-3")  # the next turn
    assert [m.id for m in pending] == ["wamid.B"] and chats.await_customer(CHAT, "conv-1", "token-1")
    with pytest.raises(DuplicateTurn):
        chats.start_bot_turn(CHAT, "conv-1", "token-1", turn="invocation-2")
    parked = chats.get(CHAT)
    assert (parked.waiting_for, parked.bot_token) == (WaitingFor.CUSTOMER, None)
    # Another conversation's turn is no duplicate: this chat does not hold it.
    assert chats.start_bot_turn(CHAT, "conv-other", "token-1", turn="invocation-4") is None
    # The next conversation starts without the last one's turn.
    assert chats.end(CHAT) and chats.claim(CHAT, "conv-2")
    assert "bot_turn" not in chats.table.get_item(Key={"chat_id": CHAT})["Item"]


def test_a_lost_turns_token_is_held_only_while_nowhere_else_and_fences_the_turn_off(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1", "wamid.A", asked("Hours?"))
    assert chats.hold_lost_turn(CHAT, "conv-other", "token-1") is None  # not this chat's conversation
    held = chats.hold_lost_turn(CHAT, "conv-1", "token-1")  # the first turn never started
    assert held.pending_messages == {"wamid.A"} and held.bot_token is None
    assert chats.hold_lost_turn(CHAT, "conv-1", "token-1") is None  # held now: once
    with pytest.raises(DuplicateTurn):  # the turn, should it come after all, leaves
        chats.start_bot_turn(CHAT, "conv-1", "token-1", turn="invocation-1")
    assert chats.get(CHAT).pending_messages == {"wamid.A"}  # left for the person
    # A parked wait is no lost turn.
    assert chats.end(CHAT) and chats.claim(CHAT, "conv-2") and chats.park_token(CHAT, "conv-2", WaitingFor.CUSTOMER, "token-2")
    assert chats.hold_lost_turn(CHAT, "conv-2", "token-2") is None


# --- what a bot turn carries and writes ---------------------------------------------------------

def asked(text: str, at: int = NOW - 30, reply: str | None = None) -> dict:
    return {"type": "text", "text": text, "timestamp": at, "reply": reply}


def test_a_waiting_message_is_carried_to_the_bot_once_and_a_long_one_is_left_to_read(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1")
    assert chats.add_pending(CHAT, "wamid.A", asked("Opening hours?"))
    assert chats.add_pending(CHAT, "wamid.A", asked("Opening hours?"))  # a retried signal: queued already, carried once
    assert chats.add_pending(CHAT, "wamid.B", asked("x" * (CARRIED_TEXT_MAX_BYTES + 1)))
    assert chats.add_pending(CHAT, "wamid.C", asked("", reply="csat_3"))
    _, pending = chats.start_bot_turn(CHAT, "conv-1", "token-1")
    assert pending == [
        WaitingMessage("wamid.A", {"id": "wamid.A", "type": "text", "text": "Opening hours?", "timestamp": NOW - 30}),
        WaitingMessage("wamid.B"),  # over the limit: the turn reads the message
        WaitingMessage("wamid.C", {"id": "wamid.C", "type": "text", "text": "", "timestamp": NOW - 30, "reply": "csat_3"}),
    ]
    assert "pending_inputs" not in chats.table.get_item(Key={"chat_id": CHAT})["Item"]  # taken with the ids


def test_the_message_that_starts_a_conversation_is_queued_in_the_claim_itself(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1", "wamid.A", asked("Hours?"))
    # Another message's claim is refused and writes nothing: it is queued apart, for the same turn.
    assert not chats.claim(CHAT, "conv-2", "wamid.B", asked("And Sundays?"))
    assert chats.get(CHAT).conversation_id == "conv-1" and chats.get(CHAT).pending_messages == {"wamid.A"}
    assert chats.add_pending(CHAT, "wamid.B", asked("And Sundays?"))
    _, pending = chats.start_bot_turn(CHAT, "conv-1", "token-1")
    assert [(m.id, m.carried["text"]) for m in pending] == [("wamid.A", "Hours?"), ("wamid.B", "And Sundays?")]
    # A long text is queued without its copy, as `add_pending` does.
    assert chats.end(CHAT) and chats.claim(CHAT, "conv-3", "wamid.C", asked("x" * 2000))
    _, pending = chats.start_bot_turn(CHAT, "conv-3", "token-2")
    assert pending == [WaitingMessage("wamid.C")]


def test_a_survey_is_answered_once_before_its_deadline_whatever_wait_the_conversation_left(aws):
    clock = [float(NOW)]
    chats = repository()
    chats.clock = lambda: clock[0]
    customer_wrote(chats)
    # An agent's wait that timed out leaves its token parked: the conversation's end removes it.
    assert chats.claim(CHAT, "conv-1") and chats.park_token(CHAT, "conv-1", WaitingFor.AGENT, "stale-token")
    assert chats.end(CHAT, survey_until=NOW + 60)
    ended = chats.get(CHAT)
    assert (ended.waiting_for, ended.survey_until, ended.workflow_token) == (WaitingFor.SURVEY, NOW + 60, None)
    assert chats.answer_survey(CHAT, 2)
    assert not chats.answer_survey(CHAT, 3)  # answered: the next message is a message
    answered = chats.get(CHAT)
    assert (answered.satisfaction_score, answered.waiting_for, answered.survey_until) == (2, None, None)
    # Past its deadline, nothing answers it; a message sent in time whose webhook comes late does.
    assert chats.claim(CHAT, "conv-2") and chats.end(CHAT, survey_until=NOW + 120)
    clock[0] = NOW + 121
    assert not chats.answer_survey(CHAT, 3) and chats.get(CHAT).satisfaction_score is None
    assert not chats.answer_survey(CHAT, 3, sent_at=NOW + 121)
    assert chats.answer_survey(CHAT, 3, sent_at=NOW + 119) and chats.get(CHAT).satisfaction_score == 3
    # A conversation that ends without a survey leaves no wait behind.
    assert chats.claim(CHAT, "conv-3") and chats.park_token(CHAT, "conv-3", WaitingFor.CUSTOMER, "token-3") and chats.end(CHAT)
    assert (chats.get(CHAT).waiting_for, chats.get(CHAT).workflow_token) == (None, None)


def test_no_copy_of_a_waiting_message_outlives_its_conversation(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.add_pending(CHAT, "wamid.A", asked("Hours?"))
    assert chats.end(CHAT)
    item = chats.table.get_item(Key={"chat_id": CHAT})["Item"]
    # The id stays for whoever takes the pending messages; the customer's words go with the conversation.
    assert item["pending_messages"] == {"wamid.A"} and "pending_inputs" not in item
    assert chats.erase(CHAT) and not chats.add_pending(CHAT, "wamid.B", asked("Hours?"))  # an erased chat is not recreated
    assert chats.get(CHAT) is None


def bot_turn_started(chats, token="token-1"):
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.begin(CHAT)
    assert chats.start_bot_turn(CHAT, "conv-1", token)


def reply(message_id: str, at: int = NOW) -> OutboundMessage:
    return OutboundMessage(id=message_id, chat_id=CHAT, phone_number_id=NUMBER, wa_id=CUSTOMER, source="bot", type="text",
                           text="We open at 9.", content={"body": "We open at 9."}, request={"type": "text", "text": "We open at 9."},
                           queued_at=at)


def store_reply(chats, message_id: str, hold: BotHold, at: int = NOW):
    write = chats.bot_reply(CHAT, hold, at)
    return write, wiring.inbox().messages.create_outbound_along(reply(message_id, at), write)


TURN = {"failures": 1, "session": {"step": "hours"}, "intent": "opening_hours"}


def test_a_bot_reply_ends_the_turn_in_the_write_that_stores_it(aws):
    chats = repository()
    bot_turn_started(chats)
    write, stored = store_reply(chats, "out.first", BotHold("conv-1", "token-1"))  # not the last: the turn goes on
    assert stored["id"] == "out.first" and not write.parks and chats.get(CHAT).bot_token == ref("token-1")
    write, stored = store_reply(chats, "out.last", BotHold("conv-1", "token-1", TURN), at=NOW + 1)
    assert stored["status"] == "queued" and write.parks
    chat = chats.get(CHAT)
    assert (chat.last_message_at, chat.bot_token, chat.workflow_token, chat.waiting_for) == (NOW + 1, None, ref("token-1"), WaitingFor.CUSTOMER)
    assert (chat.bot_failures, chat.bot_session, chat.bot_intent) == (1, {"step": "hours"}, "opening_hours")


def test_a_bot_reply_is_not_stored_once_a_person_took_the_chat(aws):
    chats = repository()
    bot_turn_started(chats)
    assert chats.take_over(CHAT) and chats.take_bot_token(CHAT) == "token-1"  # an echo from the phone app
    write, stored = store_reply(chats, "out.over-a-person", BotHold("conv-1", "token-1", TURN))
    assert stored is None and wiring.inbox().messages.get("out.over-a-person") is None
    chat = chats.get(CHAT)
    assert (chat.mode, chat.waiting_for, chat.bot_failures, chat.last_message_at) == (ChatMode.APP, None, 0, NOW - 60)


def test_a_bot_reply_on_an_erased_chat_stores_nothing_and_recreates_nothing(aws):
    chats = repository()
    bot_turn_started(chats)
    assert chats.erase(CHAT)
    _, stored = store_reply(chats, "out.erased", BotHold("conv-1", "token-1", TURN))
    assert stored is None and wiring.inbox().messages.get("out.erased") is None and chats.get(CHAT) is None


def test_a_bot_reply_while_the_customer_writes_again_records_the_turn_and_leaves_the_token_to_the_bot(aws):
    chats = repository()
    bot_turn_started(chats)
    assert chats.add_pending(CHAT, "wamid.again", asked("And on Saturday?"))
    write, stored = store_reply(chats, "out.meanwhile", BotHold("conv-1", "token-1", TURN))
    assert stored is not None and not write.parks  # sent; the next turn follows at once
    chat = chats.get(CHAT)
    assert (chat.bot_token, chat.waiting_for, chat.bot_intent, chat.last_message_at) == (ref("token-1"), None, "opening_hours", NOW)


def test_a_bot_reply_older_than_the_chats_recency_leaves_the_recency_alone(aws):
    chats = repository()
    bot_turn_started(chats)
    chats.raise_last_message(CHAT, NOW + 5)  # a customer's clock ahead of ours
    write, stored = store_reply(chats, "out.behind", BotHold("conv-1", "token-1"))
    # Nothing left to write on the chat: only the check that the bot holds it goes with the message.
    assert stored is not None and not write.recency and set(write.element()) == {"ConditionCheck"}
    write, stored = store_reply(chats, "out.last", BotHold("conv-1", "token-1", TURN))
    assert stored is not None and write.parks and not write.recency
    chat = chats.get(CHAT)
    assert (chat.last_message_at, chat.waiting_for, chat.bot_intent) == (NOW + 5, WaitingFor.CUSTOMER, "opening_hours")


def test_a_merge_carries_the_waiting_messages_copies_with_the_conversation_and_leaves_none_on_the_tombstone(aws):
    chats = repository()
    survivor = "c" + "survivor".ljust(24, "q")
    customer_wrote(chats)  # CHAT: the bot's live conversation, a message waiting for its turn
    assert chats.claim(CHAT, "conv-1") and chats.begin(CHAT) and chats.add_pending(CHAT, "wamid.A", asked("Hours?"))
    chats.record_activity(ChatActivity(NUMBER, CUSTOMER, chat_id=survivor, last_message_at=NOW - 90, last_customer_message_at=NOW - 90))
    assert chats.end(survivor)  # the other chat of the person holds nothing
    assert chats.fold_in(survivor, CHAT) is None
    assert "pending_inputs" not in chats.table.get_item(Key={"chat_id": CHAT})["Item"]
    _, pending = chats.start_bot_turn(survivor, "conv-1", "token-1")
    assert pending == [WaitingMessage("wamid.A", {"id": "wamid.A", "type": "text", "text": "Hours?", "timestamp": NOW - 30})]


def test_a_merge_that_supersedes_a_conversation_on_amazon_connect_has_its_contact_ended(aws):
    from coexist.conversation.signals import Signals

    chats = repository()
    survivor = "c" + "survivor".ljust(24, "q")
    customer_wrote(chats)  # CHAT: its conversation handed to Amazon Connect
    assert chats.claim(CHAT, "conv-1") and chats.begin(CHAT) and chats.queue(CHAT)
    assert chats.hand_to_connect(CHAT, "contact-1", "instance-1", "conv-1", "conv-1\n1", "participant-token")
    chats.record_activity(ChatActivity(NUMBER, CUSTOMER, chat_id=survivor, last_message_at=NOW - 90, last_customer_message_at=NOW - 90))
    assert chats.claim(survivor, "conv-2") and chats.begin(survivor) and chats.queue(survivor)
    assert chats.hand_to_connect(survivor, "contact-2", "instance-1", "conv-2", "conv-2\n1", "participant-token-2")

    superseded = chats.fold_in(survivor, CHAT)  # a tie: the surviving chat keeps its own contact
    assert superseded.conversation_id == "conv-1" and superseded.connect_contact == ("instance-1", "contact-1")
    assert "connect_contact_id" not in chats.table.get_item(Key={"chat_id": CHAT})["Item"]  # only the record keeps it
    assert chats.fold_in(survivor, CHAT) == superseded  # a replayed merge answers the same record

    ended, stopped = [], []

    class Desk:
        def end_contact(self, instance_id, contact_id):
            ended.append((instance_id, contact_id))

    class Executions:
        def stop(self, name, error, cause):
            stopped.append(name)

    Signals(chats=chats, workflow=Executions(), agents=wiring.agents(), connect=Desk()).end_superseded(superseded)
    assert ended == [("instance-1", "contact-1")] and stopped == ["conv-1"]
    assert chats.get(survivor).connect_contact_id == "contact-2"  # the kept conversation's contact goes on


# --- task tokens: the chat holds a reference, the token is kept apart ----------------------------

DEPLOYED_LIKE_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAA" + "x" * 660  # task tokens are hundreds of characters


def test_a_parked_token_is_a_short_reference_on_the_chat_and_whole_in_its_table(aws):
    chats = repository()
    customer_wrote(chats)
    assert chats.claim(CHAT, "conv-1") and chats.park_token(CHAT, "conv-1", WaitingFor.AGENT, DEPLOYED_LIKE_TOKEN)
    item = aws.dynamodb.Table(aws.env["CHATS_TABLE"]).get_item(Key={"chat_id": CHAT})["Item"]
    assert item["workflow_token"] == ref(DEPLOYED_LIKE_TOKEN) and len(item["workflow_token"]) < 30
    kept = aws.dynamodb.Table(aws.env["TASK_TOKENS_TABLE"]).get_item(Key={"ref": ref(DEPLOYED_LIKE_TOKEN)})["Item"]
    # Kept for a Standard execution's longest life (it removes itself through the table's TTL).
    assert kept["token"] == DEPLOYED_LIKE_TOKEN and kept["expires_at"] > time.time() + 365 * 24 * 3600
    # Another process (no memory of keeping it) takes the wait and gets the whole token back.
    other = TaskTokens(aws.dynamodb.Table(aws.env["TASK_TOKENS_TABLE"]))
    chats.tokens = other
    assert chats.take_token(CHAT, WaitingFor.AGENT) == DEPLOYED_LIKE_TOKEN
    assert chats.take_token(CHAT, WaitingFor.AGENT) is None  # taken once


def test_a_token_parked_again_is_kept_once_by_a_process(aws):
    table = aws.dynamodb.Table(aws.env["TASK_TOKENS_TABLE"])
    tokens = TaskTokens(table)
    puts = []
    real_put = table.put_item
    table.put_item = lambda **kw: (puts.append(kw), real_put(**kw))[1]
    assert tokens.keep(DEPLOYED_LIKE_TOKEN) == tokens.keep(DEPLOYED_LIKE_TOKEN) == ref(DEPLOYED_LIKE_TOKEN)
    assert len(puts) == 1
    assert ref("a") != ref("b") and ref("a").startswith("ref:")


def test_a_chat_written_before_references_holding_a_whole_token_still_works(aws):
    """Executions in flight across an upgrade: the chat holds the token itself."""
    chats = repository()
    bot_turn_started(chats)
    table = aws.dynamodb.Table(aws.env["CHATS_TABLE"])
    table.update_item(Key={"chat_id": CHAT}, UpdateExpression="SET bot_token = :whole",
                      ExpressionAttributeValues={":whole": "token-1"})
    # The turn's reply is stored under the hold the chat names by the whole token, and parks its reference.
    write, stored = store_reply(chats, "out.across", BotHold("conv-1", "token-1", TURN), at=NOW + 1)
    assert stored is not None and write.parks
    assert chats.get(CHAT).workflow_token == ref("token-1")
    # A whole token parked before is given back as it is.
    table.update_item(Key={"chat_id": CHAT}, UpdateExpression="SET workflow_token = :whole",
                      ExpressionAttributeValues={":whole": "token-old"})
    assert chats.take_customer_wait(CHAT).token == "token-old"
