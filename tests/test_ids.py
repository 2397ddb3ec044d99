"""Ids sort by creation time, even within one millisecond: cursor pagination relies on it."""

from __future__ import annotations

from ulid import ULID

from kallrec.ids import new_id


def test_ids_made_in_quick_succession_sort_in_creation_order() -> None:
    made = [new_id("rec") for _ in range(2000)]
    assert sorted(made) == made
    assert len(set(made)) == len(made)


def test_ids_carry_their_prefix_and_a_ulid() -> None:
    prefix, _, text = new_id("req").partition("_")
    assert prefix == "req"
    assert str(ULID.from_str(text)) == text
