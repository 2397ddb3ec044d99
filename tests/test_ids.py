"""Ids sort by creation time, even within one millisecond: cursor pagination relies on it."""

from __future__ import annotations

import time

from ulid import ULID

from kallrec.ids import new_id, request_id


def test_ids_made_in_quick_succession_sort_in_creation_order() -> None:
    made = [new_id("rec") for _ in range(2000)]
    assert sorted(made) == made
    assert len(set(made)) == len(made)


def test_ids_carry_their_prefix_and_a_ulid() -> None:
    prefix, _, text = new_id("req").partition("_")
    assert prefix == "req"
    assert str(ULID.from_str(text)) == text


def test_request_ids_are_unique_ulids_of_the_current_time() -> None:
    before = time.time()
    made = [request_id() for _ in range(5000)]
    assert len(set(made)) == len(made)
    for rid in made[:100]:
        prefix, _, text = rid.partition("_")
        ulid = ULID.from_str(text)
        assert prefix == "req" and str(ulid) == text
        assert before - 0.01 <= ulid.timestamp <= time.time() + 0.01
