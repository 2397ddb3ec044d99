"""Prefixed ULIDs: ``rec_01J…``. They sort by creation time, which cursor pagination relies on."""

from __future__ import annotations

from ulid import ULID

PREFIXES = ("rec", "sess", "org", "key", "kst", "evt", "wh", "wh_del", "job", "req")


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(prefix + "_") and len(value) == len(prefix) + 27
