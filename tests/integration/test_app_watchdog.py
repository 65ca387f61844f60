"""The 14-day rule watch against the emulated account: warnings at 10, 12 and 13 quiet days, once
each per quiet spell, to the operations topic; the number view shows the spell; a disconnection
is counted for the alarm that pages."""

from __future__ import annotations

import json

from coexist import wiring
from coexist.domain.app_activity import DAY_S
from functions.ingest import handler as ingest_function
from functions.watchdog import handler as watchdog_function
from tests.conftest import Context, meta_payload
from tests.integration.helpers import api, deliver
from tests.integration.test_ingest import NUMBER, account_update, echo

CONNECTED_AT = 1_800_000_000


def operations_inbox(aws) -> str:
    """A queue subscribed to the operations topic: what operators would receive."""
    url = aws.sqs.create_queue(QueueName="operators")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.session.client("sns").subscribe(TopicArn=aws.env["OPERATIONS_TOPIC_ARN"], Protocol="sqs", Endpoint=arn,
                                        Attributes={"RawMessageDelivery": "true"})
    return url


def received(aws, url: str) -> list[dict]:
    messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def watch_at(day: float) -> list:
    watchdog = wiring.app_watchdog()
    watchdog.clock = lambda: CONNECTED_AT + day * DAY_S
    return watchdog.run()


def test_a_quiet_app_is_reported_at_10_12_and_13_days_once_each(aws):
    inbox = operations_inbox(aws)
    deliver(aws, meta_payload("messages_text.json"), account_update("PARTNER_ADDED", CONNECTED_AT))
    assert watch_at(9.9) == []
    assert [(w.phone_number_id, w.days) for w in watch_at(11)] == [(NUMBER, 10)]
    assert watch_at(11.5) == []  # given already
    [notice] = received(aws, inbox)
    assert notice["phone_number_id"] == NUMBER and notice["days_without_app"] == 10
    assert notice["disconnect_expected_at"] == CONNECTED_AT + 14 * DAY_S
    assert [w.days for w in watch_at(12.2)] == [12]
    assert [w.days for w in watch_at(13.1)] == [13]
    assert watch_at(13.9) == []
    assert [n["days_without_app"] for n in received(aws, inbox)] == [12, 13]


def test_using_the_app_starts_a_new_quiet_spell(aws):
    deliver(aws, meta_payload("messages_text.json"), account_update("PARTNER_ADDED", CONNECTED_AT))
    assert [w.days for w in watch_at(10.5)] == [10]
    deliver(aws, echo("wamid.from-the-phone", CONNECTED_AT + 11 * DAY_S))  # someone answered on the phone
    assert watch_at(13.5) == []  # quiet for 2.5 days only
    assert [w.days for w in watch_at(21.2)] == [10]  # ten days after that echo, the first warning again
    view = api(f"/api/numbers/{NUMBER}")[1]["app_activity"]
    assert view["warned_at_days"] == 10 and view["disconnect_expected_at"].startswith("2027-")


def test_a_disconnection_is_counted_for_the_alarm_and_ends_the_watch(aws, monkeypatch):
    counted = []
    real = ingest_function.metrics.add_metric
    monkeypatch.setattr(ingest_function.metrics, "add_metric",
                        lambda name, unit, value: (counted.append((name, value)), real(name=name, unit=unit, value=value)))
    deliver(aws, meta_payload("messages_text.json"), account_update("PARTNER_ADDED", CONNECTED_AT))
    assert ("NumberDisconnected", 1) not in counted
    deliver(aws, account_update("PARTNER_REMOVED", CONNECTED_AT + 15 * DAY_S,
                                disconnection_info={"reason": "PRIMARY_INACTIVITY", "initiated_by": "SYSTEM"}))
    assert ("NumberDisconnected", 1) in counted
    assert watch_at(16) == []
    assert api(f"/api/numbers/{NUMBER}")[1]["app_activity"] is None
    assert watchdog_function.lambda_handler({"detail-type": "Scheduled Event"}, Context()) == {"warnings": 0}
