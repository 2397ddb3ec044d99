"""The placement rules of a session's timeline (spec §6): the bounds are inclusive, and every
refusal is ``timestamp_out_of_range`` with a message that says which rule and by how much."""

from __future__ import annotations

import pytest

from kallrec.live.messages import StreamError
from kallrec.live.timeline import (
    MAX_SPAN_MS,
    MOVE_BACK_MS,
    RESERVE_MS,
    Origin,
    Timeline,
    check,
    read_origin,
)

START = 1_764_000_000_000
ORIGIN = Origin(START - RESERVE_MS, START)
END = START + 5_000  # the furthest audio so far
JUMP = 60_000


@pytest.mark.parametrize(
    "timestamp_ms", [START - MOVE_BACK_MS, START, END, END + JUMP, START + 2_500]
)
def test_accepted(timestamp_ms: int) -> None:
    check(timestamp_ms, 20, ORIGIN, END, JUMP)


@pytest.mark.parametrize(
    ("timestamp_ms", "words"),
    [
        (START - MOVE_BACK_MS - 1, "10001 ms before the start"),
        (END + JUMP + 1, "60001 ms after the furthest audio"),
        (START + 7_200_000, "after the furthest audio"),
    ],
)
def test_refused(timestamp_ms: int, words: str) -> None:
    with pytest.raises(StreamError) as caught:
        check(timestamp_ms, 20, ORIGIN, END, JUMP)
    assert caught.value.code == "timestamp_out_of_range"
    assert words in caught.value.message


def test_the_reserve_bounds_how_far_the_start_moves_back_in_all() -> None:
    moved = Origin(ORIGIN.base_ms, ORIGIN.base_ms + 5_000)  # the start moved back 55 s already
    check(moved.base_ms, 20, moved, END, JUMP)
    with pytest.raises(StreamError, match="at most 60000 ms in all"):
        check(moved.base_ms - 1, 20, moved, END, JUMP)


def test_twelve_hours_at_most() -> None:
    end = START + MAX_SPAN_MS - 1_000
    check(end, 1_000, ORIGIN, end, JUMP)
    with pytest.raises(StreamError, match="longer than 12 hours"):
        check(end, 1_001, ORIGIN, end, JUMP)


def test_the_origin_is_fixed_once_and_shared(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, second = Timeline(tmp_path), Timeline(tmp_path)
    assert first.establish(30_000) == Origin(30_000 - RESERVE_MS, 30_000)
    assert second.establish(99_000) == Origin(30_000 - RESERVE_MS, 30_000)  # adopts, not refixes
    second.move_start(25_000)
    first.move_start(27_000)  # a stale view never moves the start forward again
    assert read_origin(tmp_path) == Origin(30_000 - RESERVE_MS, 25_000)
    first.sync()
