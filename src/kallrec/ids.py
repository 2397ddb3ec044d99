"""Prefixed ULIDs: ``rec_01J…``. They sort by creation time, which cursor pagination relies on."""

from __future__ import annotations

from ulid import ULID


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"
