"""The one error tree, and the one place it becomes an HTTP answer.

Everything a client can be told is an ``ApiError``; anything else that escapes a handler is a bug
and is rendered as a generic 500 without details (the traceback goes to the log only).

    ApiError
    ├── AuthenticationError      401 authentication_error
    ├── PermissionDenied         403 permission_error
    ├── InvalidRequest           400 invalid_request_error (and the 404/405/409/410/413/415/422 kin)
    │   ├── ValidationError      400 validation_error: a body field's value (Kallglot's codes)
    │   ├── NotFound             404 resource_missing
    │   ├── MethodNotAllowed     405 method_not_allowed
    │   ├── Conflict             409
    │   ├── Gone                 410
    │   ├── PreconditionFailed   412 precondition_failed
    │   ├── RequestTimeout       408 request_timeout
    │   ├── RangeNotSatisfiable  416 range_not_satisfiable
    │   ├── PayloadTooLarge      413 file_too_large
    │   ├── UnsupportedMedia     415 unsupported_media_type
    │   └── Unprocessable        422
    ├── RateLimited              429 rate_limit_error
    └── ServerError              500/503 api_error
"""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.param = param
        self.retry_after = None if retry_after is None else max(1, math.ceil(retry_after))
        self.status_code = status or self.status
        self.headers = dict(headers or {})

    def body(self, request_id: str) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "code": self.code,
                "message": self.message,
                "param": self.param,
                "request_id": request_id,
                "retry_after": self.retry_after,
            }
        }

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        return headers


class AuthenticationError(ApiError):
    status = 401
    type = "authentication_error"
    default_code = "invalid_api_key"

    def response_headers(self) -> dict[str, str]:
        return {**super().response_headers(), "www-authenticate": 'Bearer realm="kallrec"'}


class PermissionDenied(ApiError):
    status = 403
    type = "permission_error"
    default_code = "insufficient_permissions"


class InvalidRequest(ApiError):
    status = 400
    type = "invalid_request_error"
    default_code = "invalid_request"


class ValidationError(InvalidRequest):
    """A field of the request body is missing or has a value kallrec does not accept.

    Kallglot types these ``validation_error`` with the codes ``missing_required_field``,
    ``invalid_field_value`` (the default), ``invalid_mode``, ``invalid_language_code``,
    ``invalid_provider`` and ``invalid_request`` (an unknown field); ``param`` names the field.
    What is not a body field keeps ``invalid_request_error``: a body that cannot be read (not
    JSON, too large, not valid text), query parameters, headers, path ids, states.
    """

    type = "validation_error"
    default_code = "invalid_field_value"


class NotFound(InvalidRequest):
    status = 404
    default_code = "resource_missing"


class MethodNotAllowed(InvalidRequest):
    status = 405
    default_code = "method_not_allowed"


class Conflict(InvalidRequest):
    status = 409
    default_code = "conflict"


class Gone(InvalidRequest):
    status = 410
    default_code = "gone"


class PreconditionFailed(InvalidRequest):
    status = 412
    default_code = "precondition_failed"


class RequestTimeout(InvalidRequest):
    status = 408
    default_code = "request_timeout"


class RangeNotSatisfiable(InvalidRequest):
    status = 416
    default_code = "range_not_satisfiable"


class PayloadTooLarge(InvalidRequest):
    status = 413
    default_code = "file_too_large"


class UnsupportedMedia(InvalidRequest):
    status = 415
    default_code = "unsupported_media_type"


class Unprocessable(InvalidRequest):
    status = 422
    default_code = "invalid_audio"


class RateLimited(ApiError):
    status = 429
    type = "rate_limit_error"
    default_code = "rate_limit_exceeded"


class ServerError(ApiError):
    status = 500
    type = "api_error"
    default_code = "internal_error"


class StorageUnavailable(ServerError):
    status = 503
    default_code = "storage_unavailable"


# Seconds a client is asked to wait after storage failed or did not answer in time.
STORAGE_RETRY_AFTER = 5


def storage_unavailable(
    message: str = "The recording's audio cannot be read from storage right now.",
) -> StorageUnavailable:
    """The one answer to a storage failure (spec §1.2): 503 storage_unavailable, Retry-After."""
    return StorageUnavailable(message, retry_after=STORAGE_RETRY_AFTER)


def missing(kind: str, object_id: str, param: str) -> NotFound:
    return NotFound(f"No such {kind}: '{object_id}'", param=param)


def render_error(error: ApiError, request_id: str) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and headers for an error: the only place errors take HTTP shape."""
    body = json.dumps(error.body(request_id), separators=(",", ":")).encode()
    headers = error.response_headers()
    headers["content-type"] = "application/json"
    headers["content-length"] = str(len(body))
    headers["cache-control"] = "no-store"
    return error.status_code, body, headers
