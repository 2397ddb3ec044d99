"""The secret-key format: ``sk_<mode>_<22 base62 random><6 base62 CRC32>``.

22 base62 characters carry 130 random bits. The CRC32 of everything before it lets a mistyped or
truncated key be refused without a lookup, and lets scanners recognise leaked keys offline.
Only the SHA-256 of a key is stored: keys are random, so a slow KDF would buy nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import zlib
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALPHABET_SET = frozenset(ALPHABET)
RANDOM_CHARS = 22
CHECKSUM_CHARS = 6
DISPLAY_PREFIX_CHARS = 12


@dataclass(frozen=True)
class ParsedKey:
    livemode: bool
    hash: str


def _base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(ALPHABET[rem])
    return "".join(reversed(out))


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode()), CHECKSUM_CHARS)


def generate(livemode: bool) -> str:
    head = f"sk_{'live' if livemode else 'test'}_" + "".join(
        secrets.choice(ALPHABET) for _ in range(RANDOM_CHARS)
    )
    return head + _checksum(head)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_CHARS] + "…"


def parse(key: str) -> ParsedKey | None:
    """The mode and hash of a well-formed key with a valid checksum, else None."""
    if key.startswith("sk_live_"):
        livemode = True
    elif key.startswith("sk_test_"):
        livemode = False
    else:
        return None
    body = key[8:]
    if len(body) != RANDOM_CHARS + CHECKSUM_CHARS or not _ALPHABET_SET.issuperset(body):
        return None
    head, check = key[:-CHECKSUM_CHARS], key[-CHECKSUM_CHARS:]
    if not secrets.compare_digest(_checksum(head), check):
        return None
    return ParsedKey(livemode, hash_key(key))
