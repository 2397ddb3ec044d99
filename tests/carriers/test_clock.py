"""Where a carrier's chunks land: anchored streams, their own timestamps, or one after another."""

from __future__ import annotations

from kallrec.carriers.clock import RecentEnds, StreamClock, anchor


def test_timestamps_count_from_the_streams_first_chunk_on_the_anchor() -> None:
    clock = StreamClock(1_000_000)
    assert clock.place("inbound", 40, 20) == 1_000_000
    assert clock.place("inbound", 20, 20) == 999_980  # out of order: before the first
    assert clock.place("outbound", 60, 20) == 1_000_020
    assert clock.place("inbound", 40, 20) == 1_000_000  # a duplicate: the same place
    assert clock.end_ms == 1_000_040


def test_chunks_without_timestamps_follow_each_other_per_track() -> None:
    clock = StreamClock(500)
    assert [clock.place("mixed", None, 20) for _ in range(3)] == [500, 520, 540]
    assert clock.place("other", None, 20) == 500
    assert clock.end_ms == 560


def test_a_later_stream_starts_no_earlier_than_where_the_last_one_ended() -> None:
    assert anchor(1000, None) == 1000
    assert anchor(1000, 5000) == 5000  # the previous one ran ahead of the clock
    assert anchor(5300, 5000) == 5000  # a quick reconnect continues seamlessly
    assert anchor(9000, 5000) == 9000  # a later one keeps the gap as silence
    ends = RecentEnds(capacity=2)
    ends.note("a", 10)
    ends.note("a", 5)
    ends.note("b", 1)
    ends.note("c", 1)
    assert ends.get("a") is None and ends.get("c") == 1
