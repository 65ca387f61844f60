"""Step Functions transitions and a bot turn's AWS requests, counted on the real definition
(benchmarks/workflow.py): a change that adds to them fails here until its ceiling is raised."""

from __future__ import annotations

from benchmarks.aws_requests import CHECKS, breaches, write_units
from benchmarks.workflow import (
    BOT_CONVERSATION, CEILING_BOT_CONVERSATION, CEILING_BOT_WRITE_UNITS_PER_MESSAGE, CEILING_ESCALATION, measure_bot_conversation,
    measure_escalated_conversation,
)
from tests.integration.test_conversation import account  # noqa: F401  (the fixture: the workflow executed)


def test_a_bot_conversation_stays_within_its_transitions_and_a_turn_within_its_requests(account):  # noqa: F811
    found = measure_bot_conversation(account)
    assert found["messages"] == len(BOT_CONVERSATION) + 1
    assert found["transitions"] <= CEILING_BOT_CONVERSATION  # its bot phase started no execution
    turn = found["bot_turn"]
    assert {function for function, _, _ in turn.calls} == {"conversation"}
    # The turn's invocation is counted (what Lambda bills for it), however it was invoked.
    assert turn.invocations["conversation"] == 1 and turn.compute_s("conversation") > 0
    assert turn.total("sqs", {"SendMessage"}) == 1  # the bot's answer, queued for the sender
    # Nothing is read: the customer's message came with the turn's start, and the bot's hold on the
    # chat is the condition of the transaction that stores its answer.
    assert turn.total("dynamodb", {"GetItem", "Query", "BatchGetItem"}) == 0
    assert turn.total("dynamodb", {"TransactWriteItems"}) == 1
    assert breaches({"bot_turn": turn}) == [], CHECKS["bot_turn"]
    # Ingest, for a message the bot waits for: the message, the chat's window (a second update when
    # the bot's answer has the message's second), the number's throughput, the message queued for
    # the bot with the parked token taken (one write), the message marked signalled; the idle timer
    # moved (the bot phase's heartbeat) and the turn's invocation. Nothing of Step Functions.
    ingest = found["ingest_waking_the_bot"]
    assert ingest.total("dynamodb", {"UpdateItem", "PutItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}) <= 6
    assert ingest.total("scheduler", {"UpdateSchedule"}) == ingest.total("lambda", {"Invoke"}) == 1
    assert not {action for _, service, action in ingest.calls if service == "stepfunctions"}
    # Read: the customer and the chat; not the task tokens table (a bot phase's token is held whole
    # on the chat).
    assert ingest.total("dynamodb", {"GetItem"}) <= 2
    # What `make cost` prices per message of a bot conversation: every function the customer's
    # messages ran, the bot's turns and close included, over the four messages.
    whole = found["per_message"]
    assert whole.per == found["messages"]
    assert {function for function, _, _ in whole.calls} == {"webhook", "ingest", "conversation"}
    assert whole.invocations["webhook"] == whole.invocations["ingest"] == found["messages"]
    # The turns, the last of which closes the conversation and ends the bot phase (its idle timer
    # deleted): no execution, and the survey's answer is ingest's alone.
    assert whole.invocations["conversation"] == len(BOT_CONVERSATION)
    assert whole.total("scheduler", {"DeleteSchedule"}) == 1 / whole.per
    assert not {action for _, service, action in whole.calls if service == "stepfunctions"}
    # DynamoDB's write units per message (23, with each message and answer in a second of its own):
    # a chat in a conversation stays under a kilobyte, holding its bot phase's short token whole and
    # a task token by reference (28 when the chat held a task token itself, every chat write and
    # inbox index entry twice the units).
    assert write_units(whole) <= CEILING_BOT_WRITE_UNITS_PER_MESSAGE


def test_an_escalated_conversation_stays_within_its_transitions(account):  # noqa: F811
    assert 0 < measure_escalated_conversation(account)["transitions"] <= CEILING_ESCALATION
