"""The pacing simulation (benchmarks/pacing.py) runs the real Throttle against a bucket table with
DynamoDB's conditional-write semantics on simulated time: seeded, so these are properties, not timings."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError

from benchmarks.pacing import BucketTable, _Clock, pair_burst, simulate
from coexist.outbound.number_settings import PAIR_BURST, PAIR_PERIOD_S


def test_the_bucket_table_refuses_as_dynamodb_does_and_returns_the_item():
    table = BucketTable(random.Random(1), (0.01, 0.01))
    table.caller = _Clock()
    table.put_item(Item={"bucket_id": "b", "tat": 100}, ConditionExpression="(attribute_not_exists(tat) OR tat <= :now)",
                   ExpressionAttributeValues={":now": 50})
    with pytest.raises(ClientError) as refused:
        table.put_item(Item={"bucket_id": "b", "tat": 200}, ConditionExpression="tat = :seen",
                       ExpressionAttributeValues={":seen": 99})
    assert refused.value.response["Item"] == {"tat": {"N": "100"}}
    assert table.items["b"]["tat"] == 100 and table.calls == 2 and table.refused == 1
    assert table.caller.now == pytest.approx(0.04)  # each call travels both ways


@pytest.mark.parametrize("limit", [20, 80])
def test_many_senders_keep_every_second_within_the_limit_and_use_it(limit):
    outcome = simulate(numbers=1, limit_mps=limit, instances=5, seconds=8)
    assert outcome.busiest_second() <= limit
    assert outcome.achieved_ratio() >= 0.94


def test_no_rolling_second_over_the_limit_when_buckets_go_idle_and_start_again():
    """Ten numbers served by twenty instances: buckets keep falling idle and starting again. A send
    from an idle bucket leaves once its write is back, late by that round trip; counting the next
    slot from its moment alone put 21 sends into one rolling second of this run."""
    outcome = simulate(numbers=10, limit_mps=20, instances=20, seconds=20)
    assert outcome.busiest_second() <= 20
    assert outcome.mean_ratio() >= 0.94


def test_one_customer_gets_the_burst_then_one_message_per_period():
    first_second, gap = pair_burst(messages=50, senders=5)
    assert first_second == PAIR_BURST
    assert gap >= PAIR_PERIOD_S - 1e-6


def test_a_number_receiving_8_msg_s_sends_only_the_rest_of_its_rate():
    """Meta counts incoming and outgoing together: ingest counts each customer message in the
    number's bucket, so a coexistence number (20 msg/s) receiving 8 msg/s sends about 11."""
    receiving = simulate(numbers=1, limit_mps=20, instances=5, seconds=20, inbound_mps=8, max_ahead_s=0.25)
    incoming = sum(len(t) for t in receiving.inbound.values()) / 20
    sends = receiving.mean_ratio() * 20
    assert 6 < incoming < 10
    assert sends + incoming <= 20 * 0.95 + 0.5  # together within the paced rate
    assert sends <= 13 and receiving.busiest_second(inbound=False) <= 20
    alone = simulate(numbers=1, limit_mps=20, instances=5, seconds=20, max_ahead_s=0.25)
    assert alone.mean_ratio() * 20 > sends + 6  # without incoming messages it sends its full rate
