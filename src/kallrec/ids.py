"""Prefixed ULIDs: ``rec_01J…``. They sort by creation time, which cursor pagination relies on.

Every request gets one (its request id), so the text form is built here from a 1,024-entry
table of character pairs: 1.5 µs instead of python-ulid's 7.6 µs per id (same layout: 48-bit
millisecond timestamp, 80 random bits, Crockford base32; tests check it against python-ulid).
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
# 26 characters carry 130 bits: 13 pairs of 10 bits, the top two bits always zero.
_SHIFTS = tuple(range(120, -1, -10))


def ulid_text(value: int) -> str:
    """The 26-character form of a 128-bit ULID."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def new_id(prefix: str) -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{ulid_text(value)}"
