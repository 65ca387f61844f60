"""The emulator keeps DynamoDB's promises that Coexist relies on."""

from __future__ import annotations

import sys
import threading
from collections import defaultdict

from botocore.exceptions import ClientError


def test_a_conditional_write_is_atomic_so_only_one_of_many_racing_writers_wins(aws):
    table = aws.dynamodb.Table(aws.env["THROTTLE_TABLE"])
    winners: list[int] = []
    start = threading.Barrier(16)

    def claim(writer: int) -> None:
        start.wait()
        try:
            table.put_item(Item={"bucket_id": "claimed", "by": writer}, ConditionExpression="attribute_not_exists(bucket_id)")
            winners.append(writer)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: a check-then-write race shows
    try:
        for _ in range(30):
            winners.clear()
            table.delete_item(Key={"bucket_id": "claimed"})
            threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(winners) == 1, winners
            assert table.get_item(Key={"bucket_id": "claimed"})["Item"]["by"] == winners[0]
    finally:
        sys.setswitchinterval(interval)



def test_a_read_waits_for_a_write_instead_of_failing_midway(aws):
    """moto serialises a read from live items: unguarded, a write landing while a scan walks the
    table fails the scan ("dictionary changed size during iteration", a 500 in local mode)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    name = aws.env["THROTTLE_TABLE"]
    table = aws.dynamodb.Table(name)
    for n in range(3):
        table.put_item(Item={"bucket_id": f"b{n}"})
    writes_during_the_scan: list[bool] = []
    writers: list[threading.Thread] = []

    class ItemsThatInviteAWrite(defaultdict):
        def values(self):
            for position, item in enumerate(super().values()):
                if position == 0:  # midway through the walk, another thread writes
                    writer = threading.Thread(target=table.put_item, kwargs={"Item": {"bucket_id": "late"}})
                    writer.start()
                    writers.append(writer)
                    writer.join(timeout=1)
                    writes_during_the_scan.append(not writer.is_alive())
                yield item

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][aws.dynamodb.meta.client.meta.region_name]
    moto_table = backend.tables[name]
    moto_table.items = ItemsThatInviteAWrite(dict, moto_table.items)
    assert len(table.scan()["Items"]) == 3  # the scan saw the table as it was when it began
    assert writes_during_the_scan == [False]  # the write waited for the scan to finish...
    writers[0].join(timeout=10)
    assert table.get_item(Key={"bucket_id": "late"})["Item"]  # ...and then landed
