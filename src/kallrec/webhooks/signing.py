"""Webhook signatures (spec §7), and how a receiver checks them.

Every delivery carries::

    Kallglot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The HMAC key is the endpoint's whole secret string, ``whsec_`` prefix included, as UTF-8; the
message is the decimal timestamp, a dot, and the request body exactly as received (bytes: do not
re-serialise the JSON before checking). ``t`` is the time of the attempt, so a retry is signed
afresh, and a signature older than the tolerance is refused: a captured request cannot be replayed
later.

A receiver in Python::

    from kallrec.webhooks import InvalidSignature, verify_signature

    try:
        verify_signature(ENDPOINT_SECRET, request.headers["Kallglot-Signature"], raw_body)
    except InvalidSignature:
        return 400
    # then de-duplicate on the Kallglot-Webhook-Id header: delivery is at least once.

The header may carry several ``v1=`` values (any one matching is enough), so a receiver written
this way keeps working if signatures for more than one secret are ever sent at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Kallglot-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300


class InvalidSignature(ValueError):
    """The signature header is missing, malformed, too old, or does not match the body."""


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and 256 random bits."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def compute_signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    raw = body.encode() if isinstance(body, str) else body
    message = str(timestamp).encode() + b"." + raw
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes | str, timestamp: int | None = None) -> str:
    """The ``Kallglot-Signature`` value for ``body``, signed now unless ``timestamp`` is given."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SCHEME}={compute_signature(secret, t, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> int:
    """Checks a ``Kallglot-Signature`` header against the raw body; returns its timestamp.

    Raises ``InvalidSignature`` when the header is missing or malformed, when no ``v1`` value
    matches (compared in constant time), or when ``t`` is more than ``tolerance`` seconds away
    from ``now`` (either way: a clock far in the future is as suspect as a replay). A tolerance of
    0 or less disables the age check.
    """
    if not header:
        raise InvalidSignature(f"No {SIGNATURE_HEADER} header.")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise InvalidSignature(f"Malformed timestamp in {SIGNATURE_HEADER}.") from None
        elif name == SCHEME:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature(f"{SIGNATURE_HEADER} needs t=<seconds> and {SCHEME}=<hex>.")
    expected = compute_signature(secret, timestamp, body)
    # Check every candidate, so the time taken does not depend on which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise InvalidSignature("The signature does not match the body.")
    current = time.time() if now is None else now
    if tolerance > 0 and abs(current - timestamp) > tolerance:
        raise InvalidSignature(
            f"The signature timestamp is outside the tolerance of {tolerance:g} seconds."
        )
    return timestamp
