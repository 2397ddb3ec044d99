"""The secret-key format: random body, CRC32 checksum, hashing."""

from __future__ import annotations

import pytest

from kallrec import keys


def test_generated_keys_parse_with_their_mode() -> None:
    live, test = keys.generate(True), keys.generate(False)
    assert live.startswith("sk_live_") and test.startswith("sk_test_")
    assert keys.parse(live).livemode is True  # type: ignore[union-attr]
    assert keys.parse(test).livemode is False  # type: ignore[union-attr]
    assert len(live) == 8 + keys.RANDOM_CHARS + keys.CHECKSUM_CHARS


def test_keys_are_unique_and_carry_at_least_128_random_bits() -> None:
    import math

    assert keys.RANDOM_CHARS * math.log2(62) >= 128
    assert len({keys.generate(True) for _ in range(1000)}) == 1000


@pytest.mark.parametrize("position", [8, 15, 29, -1])
def test_any_changed_character_fails_the_checksum(position: int) -> None:
    key = keys.generate(True)
    changed = key[position]
    replacement = "A" if changed != "A" else "B"
    broken = (
        key[:position] + replacement + key[position + 1 :]
        if position != -1
        else key[:-1] + replacement
    )
    assert keys.parse(broken) is None


@pytest.mark.parametrize(
    "value",
    ["", "sk_live_", "pk_live_" + "A" * 28, "sk_live_" + "A" * 27, "sk_live_" + "!" * 28],
)
def test_malformed_keys_are_refused_without_lookup(value: str) -> None:
    assert keys.parse(value) is None


def test_only_a_hash_is_kept_and_the_display_prefix_hides_the_secret() -> None:
    key = keys.generate(False)
    parsed = keys.parse(key)
    assert parsed is not None and parsed.hash == keys.hash_key(key) and key not in parsed.hash
    assert keys.display_prefix(key) == key[:12] + "…"
