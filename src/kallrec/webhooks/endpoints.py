"""Webhook endpoints: what a valid one is, how one is made, and how it and its deliveries look
in the API. Shared by the HTTP API and the CLI so both accept exactly the same input.

A URL is checked twice when an endpoint is made: ``validate_url`` (its form; no I/O) and
``check_destination`` (where it leads: spec §9, ``kallrec.network_addresses``), which looks
the host name up. A name that does not resolve *now* is accepted: whether it resolves, and to
what, can change at any time, so what protects the network is the sender's own check of every
address it connects to (``kallrec.webhooks.transport``); refusing it would only make creating an
endpoint depend on the DNS of the moment.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from kallrec import ids, timeutil
from kallrec.db.webhook_repository import AttemptResult, DeliveryRecord, WebhookEndpoint
from kallrec.errors import InvalidRequest
from kallrec.events import SUBSCRIBABLE_EVENT_TYPES
from kallrec.network_addresses import (
    SETTING,
    IPAddress,
    IPNetwork,
    blocked_kind,
    first_blocked,
    literal_address,
)
from kallrec.webhooks import outcomes
from kallrec.webhooks.signing import new_secret

if TYPE_CHECKING:
    from kallrec.webhooks.transport import Resolver

MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 1000
ALL_EVENTS = "*"
# How long creating an endpoint waits for its host name to resolve.
RESOLVE_TIMEOUT_SECONDS = 5.0
_REFUSED = (
    "webhooks may not reach loopback, private, link-local, carrier-grade NAT, unspecified, "
    f"multicast or reserved addresses unless the operator allows the network in {SETTING} "
    "(comma-separated CIDRs, e.g. 127.0.0.0/8 for a receiver on the same host)"
)


def validate_url(value: Any, param: str = "url") -> str:
    """An absolute http(s) URL with a host, at most 2048 characters, without credentials; a
    numeric host written the standard way (dotted-decimal IPv4, IPv6 without a zone id)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"Missing or invalid {param}: expected a string.", param=param)
    if len(value) > MAX_URL_CHARS:
        raise InvalidRequest(
            f"Invalid {param}: at most {MAX_URL_CHARS} characters are allowed.", param=param
        )
    problem = None
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        problem = "it contains whitespace or control characters"
    else:
        problem = _url_problem(value)
    if problem:
        raise InvalidRequest(f"Invalid {param} {value[:100]!r}: {problem}.", param=param)
    return value


def _url_problem(value: str) -> str | None:
    import httpx  # here: a server worker that never makes an endpoint need not load it

    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError:
        return "it is not a valid URL"
    if not parts.scheme or not parts.netloc:
        return "it must be an absolute http(s) URL, with a host"
    if parts.scheme.lower() not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "it has no host"
    if parts.username is not None or "@" in parts.netloc:
        return (
            "it contains credentials (user:password@); a receiver authenticates requests by "
            "their Kallglot-Signature instead"
        )
    # Before httpx's parse, which refuses some of these spellings without saying what they are.
    problem = _numeric_host_problem(parts.hostname)
    if problem:
        return problem
    try:
        parsed = httpx.URL(value)  # what the sender will use must accept it too
    except (ValueError, httpx.InvalidURL):
        return "it is not a valid URL"
    if parsed.userinfo:
        return "it contains credentials (user:password@)"
    return None


def _numeric_host_problem(host: str) -> str | None:
    """Why a numeric host is refused: only the standard spelling of an address is accepted,
    since other spellings (``127.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``) mean different
    things to different parsers."""
    if "%" in host:
        return (
            f"the host {host} has a zone id or escapes, which webhook URLs may not have; {_REFUSED}"
        )
    try:
        address = literal_address(host)
    except ValueError:
        return f"the host {host} is not a valid IP address"
    if address is None or str(address) == host or ":" in host:
        return None
    kind = blocked_kind(address)
    meaning = f"{address}" if kind is None else f"{address} ({kind})"
    return (
        f"the host {host} is the IPv4 address {meaning}, spelled in a non-standard way; write "
        f"IPv4 addresses in dotted-decimal form ({address}), and note that {_REFUSED}"
    )


async def check_destination(
    url: str,
    allowed: Sequence[IPNetwork],
    param: str = "url",
    *,
    resolve: Resolver | None = None,
) -> None:
    """Refuses (InvalidRequest, ``param``) a valid URL whose host is, or resolves to, an address
    webhooks may not reach. ``resolve``: how host names are looked up (the system resolver by
    default); a name that does not resolve within RESOLVE_TIMEOUT_SECONDS is accepted (see the
    module's docstring)."""
    import httpx

    from kallrec.webhooks import transport

    target = httpx.URL(url)
    host = target.host
    lookup = resolve or transport.system_resolve
    addresses: list[IPAddress] = []
    try:
        with anyio.fail_after(RESOLVE_TIMEOUT_SECONDS):
            addresses = await lookup(host, target.port or (443 if target.scheme == "https" else 80))
    except (transport.UnresolvableHost, TimeoutError):
        name = host.removesuffix(".")
        if name == "localhost" or name.endswith(".localhost"):
            addresses = [IPv4Address("127.0.0.1")]  # RFC 6761: such names are loopback
    blocked = first_blocked(addresses, allowed)
    if blocked is None:
        return
    address, kind = blocked
    where = "is" if literal_address(host) is not None else f"resolves to {address}, which is"
    raise InvalidRequest(
        f"Invalid {param} {url[:100]!r}: its host {host} {where} {kind}; {_REFUSED}.",
        param=param,
    )


def validate_events(value: Any, param: str = "enabled_events") -> list[str]:
    """A non-empty list of known event types, or ``["*"]`` for all (duplicates dropped).

    Known: the types kallrec sends and Kallglot's others (kallrec.events), so that a Kallglot
    client subscribing to ``transcript.ready`` is not refused for it."""
    known = ", ".join(SUBSCRIBABLE_EVENT_TYPES)
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            f"Missing or invalid {param}: expected a non-empty array of event types "
            f"({known}) or ['*'] for all of them.",
            param=param,
        )
    events: list[str] = []
    for item in value:
        if not isinstance(item, str) or (
            item not in SUBSCRIBABLE_EVENT_TYPES and item != ALL_EVENTS
        ):
            raise InvalidRequest(
                f"Invalid {param}: unknown event type {item!r}. Known types: {known}; "
                "or '*' for all.",
                param=param,
            )
        if item not in events:
            events.append(item)
    return [ALL_EVENTS] if ALL_EVENTS in events else events


def validate_description(value: Any, param: str = "description") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_CHARS:
        raise InvalidRequest(
            f"Invalid {param}: expected a string of at most {MAX_DESCRIPTION_CHARS} characters.",
            param=param,
        )
    return value or None


def new_endpoint(
    org_id: str, livemode: bool, url: str, events: list[str], description: str | None
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (validate the inputs first)."""
    return WebhookEndpoint(
        id=ids.new_id("wh"),
        org_id=org_id,
        livemode=livemode,
        url=url,
        events=" ".join(events),
        description=description,
        secret=new_secret(),
        created_at=timeutil.now(),
        deleted_at=None,
    )


def endpoint_object(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    """The API object; the secret only in the answer to the create request."""
    obj: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "enabled_events": endpoint.enabled_events,
        "description": endpoint.description,
        "created_at": timeutil.iso(endpoint.created_at),
        "livemode": endpoint.livemode,
    }
    if with_secret:
        obj["secret"] = endpoint.secret
    return obj


def delivery_object(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "webhook_delivery",
        "endpoint_id": record.endpoint_id,
        "event_id": record.event_id,
        "event_type": record.event_type,
        "status": record.status,
        "attempt_count": record.attempts,
        "next_attempt_at": (
            timeutil.iso(record.next_attempt_at) if record.status == "pending" else None
        ),
        "created_at": timeutil.iso(record.created_at),
        "attempts": [attempt_object(a) for a in record.history],
    }


def attempt_object(attempt: AttemptResult) -> dict[str, Any]:
    """One attempt: its category and status code, never error text or the receiver's headers
    (``kallrec.webhooks.outcomes``). ``error`` (null on success) is kept for clients written
    before ``category`` existed, and now holds the same word."""
    category = outcomes.public_category(attempt.category, attempt.response_status)
    return {
        "attempt": attempt.attempt,
        "started_at": timeutil.iso(attempt.started_at),
        "latency_ms": round(attempt.latency_ms, 1),
        "response_status": attempt.response_status,
        "category": category,
        "error": None if attempt.category is None else category,
    }
