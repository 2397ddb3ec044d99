"""What a delivery attempt came to, as one word from a fixed list (spec §9).

An attempt's record is shown to anyone with ``webhooks:manage``. Raw error text (``Connection
refused`` on one port and ``timed out`` on another, TLS details, a redirect's ``Location``) would
turn the sender into a scanner of whatever it can reach, so a record keeps only a category and,
when the receiver answered, its status code. The details go to the server's log, for the operator.
"""

from __future__ import annotations

import ssl

from kallrec.db.webhook_repository import LOST_ATTEMPT

HTTP_STATUS = "http_status"  # the receiver answered; the code is the attempt's response_status
TIMEOUT = "timeout"  # no complete answer within webhook_timeout_seconds
CONNECTION_REFUSED = "connection_refused"
# Unreachable, reset, or closed (or garbled) before a complete status line and headers.
CONNECTION_ERROR = "connection_error"
TLS_ERROR = "tls_error"  # handshake or certificate verification failed
DNS_ERROR = "dns_error"  # the host name did not resolve
BLOCKED_ADDRESS = "blocked_address"  # resolved to an address webhooks may not reach
INVALID_URL = "invalid_url"  # a stored URL the sender refuses (e.g. with user:password@)
INTERRUPTED = "interrupted"  # the sender was stopped during the attempt
LOST = LOST_ATTEMPT  # the sender died during the attempt; its lease ran out
INTERNAL_ERROR = "internal_error"  # a bug of ours; the traceback is in the log

CATEGORIES = (
    HTTP_STATUS,
    TIMEOUT,
    CONNECTION_REFUSED,
    CONNECTION_ERROR,
    TLS_ERROR,
    DNS_ERROR,
    BLOCKED_ADDRESS,
    INVALID_URL,
    INTERRUPTED,
    LOST,
    INTERNAL_ERROR,
)


def categorize(exc: BaseException) -> str:
    """The category of an exception raised while sending (httpx's, httpcore's or ours), from
    the first rule that matches anything in its chain of causes."""
    import httpcore
    import httpx

    from kallrec.webhooks.transport import BlockedAddress, UnresolvableHost

    rules: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
        ((BlockedAddress,), BLOCKED_ADDRESS),
        ((UnresolvableHost,), DNS_ERROR),
        ((ssl.SSLError, ssl.CertificateError), TLS_ERROR),
        ((httpx.TimeoutException, httpcore.TimeoutException, TimeoutError), TIMEOUT),
        ((ConnectionRefusedError,), CONNECTION_REFUSED),
        ((httpx.InvalidURL, httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol), INVALID_URL),
        ((httpx.TransportError, httpcore.NetworkError, httpcore.ProtocolError, OSError),
         CONNECTION_ERROR),
    )  # fmt: skip
    chain = _chain(exc)
    for types, category in rules:
        if any(isinstance(e, types) for e in chain):
            return category
    return INTERNAL_ERROR


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def public_category(stored: str | None, response_status: int | None) -> str:
    """The category an attempt record shows. Records written before categories existed hold
    free text, which is never shown: it is mapped to the nearest category."""
    if response_status is not None:
        return HTTP_STATUS
    if stored in CATEGORIES:
        return stored
    text = (stored or "").lower()
    for words, category in _LEGACY:
        if any(word in text for word in words):
            return category
    return CONNECTION_ERROR


_LEGACY = (
    (("timeout", "timed out"), TIMEOUT),
    (("refused",), CONNECTION_REFUSED),
    (("ssl", "certificate", "tls"), TLS_ERROR),
    (("interrupted",), INTERRUPTED),
    (("no result recorded",), LOST),
)
