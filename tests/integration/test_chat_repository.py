"""The chat repository on the emulated table: moves are conditional on the mode they start from, so a
racing change of hands is refused instead of overwritten; the free entry point of an ad referral."""

from __future__ import annotations

from coexist import wiring
from coexist.domain.chat import ChatMode, ConversationState, WaitingFor
from coexist.domain.records import ChatActivity
from coexist.domain.window import FREE_ENTRY_POINT_WINDOW_S
from coexist.reads import iso

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
    assert (chat.chat_id, chat.conversation_id, pending) == (CHAT, "conv-1", ["wamid.A", "wamid.B"])
    assert chats.get(CHAT).bot_token == "token-1" and chats.get(CHAT).pending_messages == frozenset()
    # A message arrived while the bot answered: the token does not wait, the next turn takes it.
    assert chats.add_pending(CHAT, "wamid.C")
    assert not chats.await_customer(CHAT, "conv-1", "token-1", 0, {"step": "hours"}, "opening_hours")
    assert chats.get(CHAT).waiting_for is None and chats.get(CHAT).bot_failures == 0
    _, pending = chats.start_bot_turn(CHAT, "conv-1", "token-2")
    assert pending == ["wamid.C"]
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
