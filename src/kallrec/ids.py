"""Prefixed ULIDs: ``rec_01J…``. They sort by creation time, which cursor pagination relies on."""

from __future__ import annotations

import base64
import random
import time

from ulid import ULID

# RFC 4648 base32 → Crockford's (ULID's) alphabet.
_CROCKFORD = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def request_id() -> str:
    """``req_`` + a ULID, made for every request, so cheaply: ~4 µs against python-ulid's ~10
    (which asks the kernel for fresh randomness each time). Request ids are never paginated,
    so they need not sort within a millisecond, and need not be unguessable: 80 random bits
    from ``random`` (reseeded in every forked worker) keep them unique."""
    value = (time.time_ns() // 1_000_000) << 80 | random.getrandbits(80)
    # 26 base32 digits are 130 bits: the ULID's 128 after two zero bits, then six of padding.
    digits = base64.b32encode((value << 6).to_bytes(17, "big"))[:26]
    return "req_" + digits.translate(_CROCKFORD).decode()
