"""The emulator keeps DynamoDB's promises that Coexist relies on."""

from __future__ import annotations

import sys
import threading

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
