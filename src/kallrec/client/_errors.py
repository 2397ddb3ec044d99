"""The client's exception tree, and the one place an HTTP answer becomes an exception.

    KallrecError                      anything this client raises on purpose
    ├── ConfigurationError            no API key, bad base URL
    ├── APIConnectionError            no answer: connect/read failure, reset, timeout
    │   └── APITimeoutError
    ├── DownloadError                 the bytes arrived but cannot be trusted or stored
    │   └── IntegrityError            size or SHA-256 does not match what the server announced
    └── APIStatusError                the server answered non-2xx (``status``, ``type``, ``code``…)
        ├── AuthenticationError       401 authentication_error
        ├── PermissionDeniedError     403 permission_error
        ├── InvalidRequestError       400 (and other 4xx) invalid_request_error
        │   ├── ValidationError       400 validation_error: a body field (``param``), with
        │   │                         Kallglot's codes (missing_required_field, invalid_mode…)
        │   ├── NotFoundError         404
        │   ├── ConflictError         409
        │   │   └── RecordingNotReadyError   409 recording_not_ready (still processing)
        │   ├── GoneError             410
        │   ├── PreconditionFailedError      412
        │   └── RangeNotSatisfiableError     416
        ├── RateLimitError            429 rate_limit_error
        └── APIError                  5xx api_error
            └── ServiceUnavailableError      503

The subclass is chosen by HTTP status (so a server that sends no envelope still maps sensibly),
a 400 of type ``validation_error`` being a ``ValidationError``;
``type``, ``code``, ``param``, ``request_id`` and ``retry_after`` come from the error envelope
(spec §5) when there is one, ``request_id`` falling back to the ``X-Request-ID`` header and
``retry_after`` preferring the ``Retry-After`` header.
"""

from __future__ import annotations

import contextlib
import json
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "DownloadError",
    "GoneError",
    "IntegrityError",
    "InvalidRequestError",
    "KallrecError",
    "NotFoundError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RangeNotSatisfiableError",
    "RateLimitError",
    "RecordingNotReadyError",
    "ServiceUnavailableError",
    "ValidationError",
]

# An error body is a small JSON document; never read more than this of one.
MAX_ERROR_BODY = 64 * 1024


class KallrecError(Exception):
    """Base of every exception the client raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(KallrecError):
    """The client cannot be built as asked (no API key, unusable base URL)."""


class APIConnectionError(KallrecError):
    """The request got no HTTP answer: refused, reset, cut mid-body, or timed out."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """Connecting or waiting for the next bytes took longer than the configured timeout."""


class DownloadError(KallrecError):
    """A download cannot complete for a local reason (file system, unusable answer)."""


class IntegrityError(DownloadError):
    """The downloaded bytes do not match the size or content hash the server announced."""

    def __init__(self, message: str, *, expected: str | int | None, actual: str | int) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class APIStatusError(KallrecError):
    """The server answered with a non-2xx status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body
        self.headers = headers if headers is not None else httpx.Headers()

    def __str__(self) -> str:
        details = " ".join(str(part) for part in (self.status, self.code) if part)
        suffix = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.message} [{details}]{suffix}"


class AuthenticationError(APIStatusError):
    """401: missing, malformed or unknown key (``invalid_api_key``), revoked key
    (``revoked_api_key``); ``expired_api_key`` from a server whose keys expire."""


class PermissionDeniedError(APIStatusError):
    """403: the key lacks the scope the request needs."""


class InvalidRequestError(APIStatusError):
    """400 and the other invalid_request_error statuses."""


class ValidationError(InvalidRequestError):
    """400 ``validation_error``: a body field is missing or invalid; ``param`` names it and
    ``code`` says how (``missing_required_field``, ``invalid_field_value``, ``invalid_mode``,
    ``invalid_language_code``, ``invalid_provider``, ``invalid_request``)."""


class NotFoundError(InvalidRequestError):
    """404: no such object (or it belongs to another organization or mode)."""


class ConflictError(InvalidRequestError):
    """409: e.g. ``recording_failed`` or ``idempotency_conflict``."""


class RecordingNotReadyError(ConflictError):
    """409 ``recording_not_ready``: the recording is still processing; try after ``retry_after``."""


class GoneError(InvalidRequestError):
    """410: e.g. ``recording_expired`` (audio purged by retention)."""


class PreconditionFailedError(InvalidRequestError):
    """412: an ``If-Match`` / ``If-Unmodified-Since`` did not hold."""


class RangeNotSatisfiableError(InvalidRequestError):
    """416: the requested byte range lies outside the file."""


class RateLimitError(APIStatusError):
    """429: the key made too many requests; ``retry_after`` says when to try again."""


class APIError(APIStatusError):
    """5xx: the server failed."""


class ServiceUnavailableError(APIError):
    """503: e.g. ``storage_unavailable``; usually with ``retry_after``."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    412: PreconditionFailedError,
    416: RangeNotSatisfiableError,
    429: RateLimitError,
    503: ServiceUnavailableError,
}

_BY_TYPE: dict[str, type[APIStatusError]] = {
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "invalid_request_error": InvalidRequestError,
    "validation_error": ValidationError,
    "rate_limit_error": RateLimitError,
    "api_error": APIError,
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds == float("inf"):  # NaN / inf
        return None
    return max(0.0, seconds)


def _error_class(status: int, type_: str | None, code: str | None) -> type[APIStatusError]:
    if status == 409 and code == "recording_not_ready":
        return RecordingNotReadyError
    if status == 400 and type_ == "validation_error":
        return ValidationError
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 400 <= status < 500:
        return InvalidRequestError
    if status >= 500:
        return APIError
    return _BY_TYPE.get(type_ or "", APIStatusError)


def error_from_response(response: httpx.Response, raw_body: bytes) -> APIStatusError:
    """The exception for a non-2xx answer, given its (possibly empty or non-JSON) body."""
    envelope: dict[str, Any] = {}
    body: Any = None
    if raw_body:
        try:
            body = json.loads(raw_body)
        except (UnicodeDecodeError, ValueError):
            body = raw_body.decode("utf-8", "replace")
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            envelope = body["error"]

    def text(name: str) -> str | None:
        value = envelope.get(name)
        return value if isinstance(value, str) and value else None

    type_, code = text("type"), text("code")
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is None:
        raw = envelope.get("retry_after")
        if isinstance(raw, int | float) and not isinstance(raw, bool) and raw >= 0:
            retry_after = float(raw)
    message = text("message")
    if message is None:
        reason = response.reason_phrase or "error"
        message = f"HTTP {status} {reason}"
        if isinstance(body, str) and body.strip():
            message += f": {body.strip().splitlines()[0][:200]}"
    cls = _error_class(status, type_, code)
    return cls(
        message,
        status=status,
        type=type_,
        code=code,
        param=text("param"),
        request_id=text("request_id") or response.headers.get("x-request-id"),
        retry_after=retry_after,
        body=body,
        headers=response.headers,
    )


def connection_error(exc: httpx.TransportError) -> APIConnectionError:
    request = None
    with contextlib.suppress(RuntimeError):  # an httpx error raised without a request
        request = exc.request
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"Timed out: {detail}", request=request)
    return APIConnectionError(f"Connection failed: {detail}", request=request)
