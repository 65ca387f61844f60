"""The conversation workflow, counted: Step Functions state transitions from the execution
histories of the real definition (executed by the emulator, its tasks run by the real conversation
function), and the AWS requests of a bot turn.

Standard workflows are billed per state transition, so this figure, not the function's duration,
decides what a bot conversation costs.
"""

from __future__ import annotations

import json
import time

from benchmarks.aws_requests import Requests, RequestCounter

BOT_CONVERSATION = ["What are your opening hours?", "And what are your opening hours on Saturday?", "thanks, bye"]
TARGET_PER_MESSAGE = 1
TARGET_PER_ESCALATION = 15
# Today's figures, which tests/integration/test_workflow_counts.py holds.
CEILING_BOT_CONVERSATION = 0  # transitions of the four-message bot conversation: its bot phase starts no execution
CEILING_ESCALATION = 8
# DynamoDB write units per customer message of that conversation (benchmarks/dynamodb_units.py):
# 23 (23.25 while the bot phase's task token was put in the task tokens table). Each customer
# message comes at the start of a second, so a turn's writes share its second; a turn slow enough
# to straddle the next moves the chat in the inbox index once more: the first turn's second answer
# (+1 unit), the last turn's survey after its answer (+2), 24 at most.
CEILING_BOT_WRITE_UNITS_PER_MESSAGE = 24


def transitions(account, execution_arn: str) -> int:
    """State transitions of one execution: every state entered (what Step Functions bills)."""
    sfn, count, token = account.sfn, 0, None
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {}))
        count += sum(1 for event in page["events"] if event["type"].endswith("StateEntered"))
        token = page.get("nextToken")
        if not token:
            return count


def _only(requests: Requests, *functions: str) -> Requests:
    """What these functions did within an effect."""
    kept = Requests(per=requests.per)
    kept.calls.update({key: n for key, n in requests.calls.items() if key[0] in functions})
    kept.units.update({key: n for key, n in requests.units.items() if key[0] in functions})
    for name in ("invocations", "handler_s", "in_calls_s", "log_bytes"):
        getattr(kept, name).update({f: getattr(requests, name)[f] for f in functions if getattr(requests, name)[f]})
    return kept


# What a customer's messages cost in a bot conversation: the webhook, ingest (with its signals to the
# workflow) and the conversation function. The bot's answers are sends, priced as sends.
INBOUND_IN_CONVERSATION = ("webhook", "ingest", "conversation")


WARM_UP_CUSTOMER = "16505550000"


def _warm_up(account) -> None:
    """Another customer's conversation, before anything is counted: a million messages cost what warm
    functions do (an instance's cold start is paid once, not per message). Our customer's own
    conversation stays a new customer's."""
    from coexist import wiring
    from coexist.domain.chat import WaitingFor
    from tests.integration import test_conversation as conversation
    from tests.integration.helpers import chat_of, deliver
    from tests.integration.test_ingest import NUMBER, text_message

    for said, awaited in ((BOT_CONVERSATION[0], WaitingFor.CUSTOMER), (BOT_CONVERSATION[-1], WaitingFor.SURVEY)):
        deliver(account, text_message(f"wamid.warm-up-{awaited}", int(time.time()), body=said, sender=WARM_UP_CUSTOMER))
        chat_id = chat_of(NUMBER, WARM_UP_CUSTOMER)
        conversation.wait_for(lambda: getattr(wiring.inbox().chats.get(chat_id), "waiting_for", None) == awaited,
                              what=f"the warm-up conversation to wait for the {awaited}")
    conversation.finished(account, chat_id)
    _settled()  # nothing of it still runs beside what is counted


def _settled() -> None:
    """The conversation function's invocations under way have returned: the turn that ended an
    execution may still be returning from its (asynchronous) invocation when the execution ends."""
    from local.workflows import _asynchronous

    for invocation in list(_asynchronous):
        invocation.join(timeout=30)


def _customer_says(account, text: str, reply: tuple[str, str] | None = None) -> None:
    """The customer's next message, timed as a deployment sees it: written at least a second after
    the bot's last answer (a person reads it first) and delivered in a later second than it was
    written (Meta's delivery takes that long), so that the bot's answer, too, falls in a later second.

    Times are whole seconds, and a write that finds the chat's recency already at its second leaves
    the inbox index alone, or is refused and narrowed: in the same second, the counts would depend on
    where the machine's clock happened to be (20.75 to 23.25 units a message, runs apart, when every
    message was sent the moment the bot had answered)."""
    from tests.integration import test_conversation as conversation
    from tests.integration.helpers import deliver

    answered = int(time.time())  # no later than the second of the bot's last answer
    while int(time.time()) < answered + 2:  # left at the start of a second: the turn has the rest
        time.sleep(0.02)
    deliver(account, conversation.says(text, at=int(time.time()) - 1, reply=reply))


def measure_bot_conversation(account) -> dict:
    """A bot conversation: the customer asks twice, says goodbye and answers the survey."""
    from tests.integration import test_conversation as conversation

    counter = RequestCounter()
    messages = len(BOT_CONVERSATION) + 1
    with counter.installed():
        _warm_up(account)  # under the counter, which rebuilds the functions' clients when installed
        with counter.effect(per=messages) as whole:
            _customer_says(account, BOT_CONVERSATION[0])
            conversation.wait_for(lambda: conversation.chat()["waiting_for"] == "customer", what="the bot's first answer")
            answered = len(conversation.bot_messages())
            with counter.effect() as turn:
                _customer_says(account, BOT_CONVERSATION[1])
                conversation.wait_for(lambda: len(conversation.bot_messages()) > answered and conversation.chat()["waiting_for"] == "customer",
                                      what="the bot's second answer")
            _customer_says(account, BOT_CONVERSATION[2])
            conversation.wait_for(lambda: conversation.chat()["waiting_for"] == "survey", what="the survey")
            _customer_says(account, "", reply=("csat_3", "😊 Great"))
            assert conversation.chat()["satisfaction_score"] == 3
            described = conversation.finished(account, conversation.our_chat())
            _settled()  # the last turn's invocation counted within the conversation
    # A bot phase that resolves starts no execution (coexist.conversation.workflow): no transition.
    return {"messages": messages, "transitions": 0 if described is None else transitions(account, described["executionArn"]),
            "bot_turn": _only(turn, "conversation"),
            "ingest_waking_the_bot": _only(turn, "ingest"),
            "per_message": _only(whole, *INBOUND_IN_CONVERSATION)}


def measure_escalated_conversation(account) -> dict:
    """First message to survey: the customer asks for a person, an agent accepts, answers, closes."""
    from tests.integration import test_conversation as conversation
    from tests.integration.helpers import deliver

    conversation.add_agent("ana")
    deliver(account, conversation.says("I want to talk to a person"))
    conversation.wait_for(lambda: conversation.chat()["offered_to"] == "ana", what="the offer")
    chat_id = conversation.our_chat()
    assert conversation.agent_call("POST", f"/api/chats/{chat_id}/accept", "ana")[0] == 200
    conversation.wait_for(lambda: conversation.chat()["waiting_for"] == "agent", what="the agent wait")
    assert conversation.agent_call("POST", f"/api/chats/{chat_id}/messages", "ana", {"type": "text", "text": "Ana here."})[0] == 202
    assert conversation.agent_call("POST", f"/api/chats/{chat_id}/close", "ana")[0] == 200
    conversation.wait_for(lambda: conversation.chat()["waiting_for"] == "survey", what="the survey")
    deliver(account, conversation.says("", reply=("csat_2", "😐 Okay")))
    described = conversation.finished(account)
    return {"transitions": transitions(account, described["executionArn"])}


def _in_workflow_account(measure):
    import pytest

    from local.workflows import EXECUTE_STATE_MACHINES
    from tests.conftest import emulated_account
    from tests.integration.test_conversation import FAST

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COEXIST_CONVERSATION", json.dumps(FAST))
        with emulated_account(patch, config=EXECUTE_STATE_MACHINES, workflow=True) as account:
            return measure(account)


def measure() -> dict:
    return {"bot": _in_workflow_account(measure_bot_conversation), "escalated": _in_workflow_account(measure_escalated_conversation)}


def rows(found: dict) -> list[tuple[str, str]]:
    from benchmarks.aws_requests import CHECKS, EFFECTS

    bot, escalated = found["bot"], found["escalated"]
    per_message = bot["transitions"] / bot["messages"]
    mark = lambda value, target: "✓" if value <= target else "✗"  # noqa: E731
    table = [
        (f"Step Functions transitions per customer message, bot conversation of {bot['messages']} messages",
         f"{per_message:.2f} ({bot['transitions']} in all; target ≤ {TARGET_PER_MESSAGE} {mark(per_message, TARGET_PER_MESSAGE)})"),
        ("Step Functions transitions per escalated conversation (first message to survey)",
         f"{escalated['transitions']} (target ≤ {TARGET_PER_ESCALATION} {mark(escalated['transitions'], TARGET_PER_ESCALATION)})"),
    ]
    [check] = CHECKS["bot_turn"]
    value = check.count(bot["bot_turn"])
    table += [
        (f"{EFFECTS['bot_turn']}: {check.what}", f"{value:g} (target ≤ {check.target:g} {mark(value, check.target)})"),
        ("  … bot turn: requests", bot["bot_turn"].summary()),
    ]
    return table


if __name__ == "__main__":
    for name, value in rows(measure()):
        print(f"{name} | {value}")
