"""What a process remembers of a table: a rarely changing value is read once per time to live."""

from coexist.store.memo import ReadAtMostEvery


def test_a_value_is_read_once_per_key_until_its_time_to_live_has_passed():
    now, reads = [100.0], []
    remembered = ReadAtMostEvery(lambda key: reads.append(key) or f"{key}@{now[0]}", ttl_s=60, clock=lambda: now[0])
    assert remembered("a") == remembered("a") == "a@100.0"
    assert remembered("b") == "b@100.0"
    now[0] += 59.9
    assert remembered("a") == "a@100.0" and reads == ["a", "b"]
    now[0] += 0.1  # 60 s after the read: read again
    assert remembered("a") == "a@160.0" and reads == ["a", "b", "a"]
