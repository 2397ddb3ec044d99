"""Webhook endpoints: what a valid one is, how one is made, and how it and its deliveries look
in the API. Shared by the HTTP API and the CLI so both accept exactly the same input."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from kallrec import ids, timeutil
from kallrec.db.webhook_repository import DeliveryRecord, WebhookEndpoint
from kallrec.errors import InvalidRequest
from kallrec.events import EVENT_TYPES
from kallrec.webhooks.signing import new_secret

MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 1000
ALL_EVENTS = "*"


def validate_url(value: Any, param: str = "url") -> str:
    """An absolute http(s) URL with a host, at most 2048 characters."""
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
        import httpx  # here: a server worker that never makes an endpoint need not load it

        try:
            parts = urlsplit(value)
            _ = parts.port  # raises on a non-numeric or out-of-range port
            httpx.URL(value)  # what the sender will use must accept it too
        except (ValueError, httpx.InvalidURL):
            problem = "it is not a valid URL"
        else:
            if not parts.scheme or not parts.netloc:
                problem = "it must be an absolute http(s) URL, with a host"
            elif parts.scheme.lower() not in ("http", "https"):
                problem = "the scheme must be http or https"
            elif not parts.hostname:
                problem = "it has no host"
    if problem:
        raise InvalidRequest(f"Invalid {param} {value[:100]!r}: {problem}.", param=param)
    return value


def validate_events(value: Any, param: str = "enabled_events") -> list[str]:
    """A non-empty list of known event types, or ``["*"]`` for all (duplicates dropped)."""
    known = ", ".join(EVENT_TYPES)
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            f"Missing or invalid {param}: expected a non-empty array of event types "
            f"({known}) or ['*'] for all of them.",
            param=param,
        )
    events: list[str] = []
    for item in value:
        if not isinstance(item, str) or (item not in EVENT_TYPES and item != ALL_EVENTS):
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
        "attempts": [
            {
                "attempt": a.attempt,
                "started_at": timeutil.iso(a.started_at),
                "latency_ms": round(a.latency_ms, 1),
                "response_status": a.response_status,
                "error": a.error,
            }
            for a in record.history
        ],
    }
