"""Signed, expiring URLs for converted downloads (GET /v1/recordings/{id}/download → 302 here).

A link is ``/v1/recordings/{id}/download/file?format=…&sample_rate=…&expires=…&signature=…``:
whoever holds it may fetch that one conversion until ``expires`` (Unix seconds), without a key,
like an S3 presigned URL. The signature is HMAC-SHA256 over everything the link grants, keyed by
a server secret that every replica shares: ``KALLREC_DOWNLOAD_SIGNING_SECRET`` when set (replicas
on several hosts), else a random key created once in the data directory (replicas of one host,
which already share the SQLite database there). Rotating the secret invalidates open links.

The signature is checked before anything is looked up, so a forged link learns nothing about
which recordings exist. Its numbers are checked for shape first (ASCII digits, a dozen at most):
a 5,000-digit ``expires`` is a malformed link, not a number Python refuses to parse.

Playback links (``/v1/playback/{link_id}/audio?expires=…&signature=…``, issue 16) are signed by
the same secret and the same HMAC over a message of their own (``playback-v1``, the link id, its
expiry): no download signature is ever a valid playback one, nor the reverse. What the URL does
not carry (the recording, the disposition, whether the link or its key was revoked) is in the
link's row, read only once the signature proved the URL genuine.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlencode

from kallrec.config import Settings

SECRET_FILE = "download-signing.key"
_VERSION = "v1"
_creating = threading.Lock()  # first requests arrive together, on several threads
# Unix seconds have 10 digits until the year 2286, sample rates 5: anything longer is not ours.
_MAX_DIGITS = 12


class InvalidLink(Exception):
    """Forged, altered, malformed or incomplete; ``param`` names the part at fault."""

    def __init__(self, reason: str, param: str = "signature") -> None:
        super().__init__(reason)
        self.param = param


class ExpiredLink(Exception):
    """Genuine, but past its ``expires``."""


def signing_secret(settings: Settings) -> bytes:
    if settings.download_signing_secret:
        return settings.download_signing_secret.encode()
    return _secret_in(settings.data_dir.resolve())


@functools.cache
def _secret_in(data_dir: Path) -> bytes:
    with _creating:
        return _read_or_create(data_dir / SECRET_FILE)


def _read_or_create(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    # Written whole to a temp name (mkstemp: mode 0600), then linked into place: os.link fails if
    # another process won the race, and then everybody uses the winner's key, never a half one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{SECRET_FILE}.")
    try:
        os.write(fd, secrets.token_hex(32).encode())
        os.fsync(fd)
        os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_bytes().strip()


def _mac(secret: bytes, *fields: str) -> str:
    """HMAC-SHA256 over the fields, one per line, URL-safe base64 without padding. The first field
    names what is signed, so a signature made for one kind of link never fits another."""
    digest = hmac.new(secret, "\n".join(fields).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _signature(secret: bytes, recording_id: str, fmt: str, sample_rate: int, expires: int) -> str:
    return _mac(secret, _VERSION, recording_id, fmt, str(sample_rate), str(expires))


def signed_path(secret: bytes, recording_id: str, fmt: str, sample_rate: int, expires: int) -> str:
    query = urlencode(
        {
            "format": fmt,
            "sample_rate": sample_rate,
            "expires": expires,
            "signature": _signature(secret, recording_id, fmt, sample_rate, expires),
        }
    )
    return f"/v1/recordings/{recording_id}/download/file?{query}"


def verify(
    secret: bytes,
    recording_id: str,
    fmt: str | None,
    sample_rate: str | None,
    expires: str | None,
    signature: str | None,
    now: float,
) -> tuple[str, int]:
    """The (format, sample_rate) a genuine, unexpired link grants; else InvalidLink/ExpiredLink."""
    if not (fmt and sample_rate and expires and signature):
        raise InvalidLink("incomplete")
    rate, until = _number(sample_rate, "sample_rate"), _number(expires, "expires")
    expected = _signature(secret, recording_id, fmt, rate, until)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise InvalidLink("bad signature")
    if until <= now:
        raise ExpiredLink(f"expired at {until}")
    return fmt, rate


def _number(raw: str, param: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= _MAX_DIGITS):
        raise InvalidLink(f"malformed {param}", param)
    return int(raw)


# -- playback links (issue 16) ------------------------------------------------------------------

_PLAYBACK = "playback-v1"
PLAYBACK_PREFIX = "/v1/playback/"


def playback_path(secret: bytes, link_id: str, expires: int, resource: str = "audio") -> str:
    """The path and query of a playback link's ``resource`` (``audio`` or ``peaks``): both are
    granted by one signature, so whoever may play the call may draw its waveform."""
    signature = _mac(secret, _PLAYBACK, link_id, str(expires))
    query = urlencode({"expires": expires, "signature": signature})
    return f"{PLAYBACK_PREFIX}{link_id}/{resource}?{query}"


def verify_playback(
    secret: bytes, link_id: str, expires: str | None, signature: str | None, now: float
) -> int:
    """The expiry of a genuine, unexpired playback link; else InvalidLink/ExpiredLink."""
    if not (expires and signature):
        raise InvalidLink("incomplete")
    until = _number(expires, "expires")
    expected = _mac(secret, _PLAYBACK, link_id, str(until))
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise InvalidLink("bad signature")
    if until <= now:
        raise ExpiredLink(f"expired at {until}")
    return until
