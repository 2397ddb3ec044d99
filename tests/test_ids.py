"""The hand-made ULID text form must be exactly python-ulid's."""

from __future__ import annotations

import random
import time

from ulid import ULID

from kallrec.ids import new_id, ulid_text


def test_ulid_text_matches_python_ulid_for_random_and_extreme_values() -> None:
    rng = random.Random(7)
    values = [0, 1, (1 << 128) - 1, 1 << 127, *(rng.getrandbits(128) for _ in range(5000))]
    for value in values:
        assert ulid_text(value) == str(ULID.from_int(value))


def test_new_ids_carry_the_prefix_and_the_current_millisecond() -> None:
    before = time.time()
    made = new_id("req")
    prefix, _, text = made.partition("_")
    assert prefix == "req" and len(text) == 26
    assert before - 0.001 <= ULID.from_str(text).timestamp <= time.time() + 0.001


def test_new_ids_sort_by_creation_time_across_milliseconds() -> None:
    first = new_id("rec")
    time.sleep(0.002)
    assert new_id("rec") > first
