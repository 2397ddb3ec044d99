"""Stream tokens (``kst_…``): minted only for keys that may write the session, bound to it.

A token is ``kst_live_`` or ``kst_test_`` (the session's mode), 16 random bytes and a MAC:
HMAC-SHA256 over the session id and everything before the MAC, keyed by the server's signing
secret (the one signed download links use, shared by every replica), truncated to 128 bits.

The database decides whether a token opens a stream: it must be the session's current token and
unexpired. The MAC answers what the database no longer can once a session has ended and its
token was cleared: was this token issued for this session? Only then does the stream say that the
session ended (4009); every other token is just invalid (4001), so someone without a token learns
nothing about which sessions exist or have ended.

Tokens of the earlier shape (``kst_`` + 32 characters) were handed to read-only keys too; they
open no stream any more, and a GET with a ``sessions:write`` key replaces one at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_PURPOSE = b"kallrec stream token v1\x00sessions:write\x00"
_PART = 22  # 16 bytes in unpadded base64url
_SHAPE = re.compile(rf"kst_(?:live|test)_[A-Za-z0-9_-]{{{2 * _PART}}}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(secret: bytes, session_id: str, head: str) -> str:
    message = _PURPOSE + session_id.encode() + b"\x00" + head.encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest()[:16])


def mint(session_id: str, livemode: bool, secret: bytes) -> str:
    head = f"kst_{'live' if livemode else 'test'}_{_b64(secrets.token_bytes(16))}"
    return head + _mac(secret, session_id, head)


def current_shape(token: str) -> bool:
    """Minted by this version, i.e. only ever for a key with ``sessions:write``."""
    return _SHAPE.fullmatch(token) is not None


def issued_for(token: str, session_id: str, secret: bytes) -> bool:
    """Whether this server minted ``token`` for ``session_id`` (constant time)."""
    if not current_shape(token):
        return False
    head, mac = token[:-_PART], token[-_PART:]
    return hmac.compare_digest(mac, _mac(secret, session_id, head))
