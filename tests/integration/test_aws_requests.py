"""AWS requests per effect, counted through the real handlers (benchmarks/aws_requests.py): a
change that adds a request to an effect fails here until its ceiling is raised on purpose."""

from __future__ import annotations

from benchmarks.aws_requests import CHECKS, EFFECTS, breaches, measure_inbox_and_sending


def test_no_effect_makes_more_aws_requests_than_its_ceiling(aws):
    found = measure_inbox_and_sending(aws)
    assert set(found) == set(CHECKS) - {"bot_turn"}
    over = breaches(found)
    assert over == [], "\n".join(over)


def test_the_count_is_per_function_and_operation(aws):
    found = measure_inbox_and_sending(aws)
    inbound = found["inbound"].calls
    # The webhook queues the body for the archive and for ingest: nothing else.
    assert {(s, op): n for (f, s, op), n in inbound.items() if f == "webhook"} == {("sqs", "SendMessage"): 2}
    # The archive writes a batch of bodies as one object.
    archive = found["archive"]
    assert archive.per > 100 and archive.calls == {("raw_archive", "s3", "PutObject"): 1}
    # A history import is counted per message: its batch writes are shared by 25 messages each.
    assert found["history"].per > 1 and found["history"].total("dynamodb", {"BatchWriteItem"}) < 1
    # A request made above a ceiling is reported, with what the effect was made of.
    found["send"].calls[("sender", "dynamodb", "GetItem")] += 100
    [breach] = breaches(found)
    assert breach.startswith(EFFECTS["send"]) and "dynamodb:GetItem" in breach
