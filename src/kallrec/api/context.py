"""What the app and a handler tell each other about one request, typed.

The app makes one `RequestContext` per HTTP request and puts it in the ASGI scope's `state`
(the channel ASGI gives for per-request data); handlers find it with `request_context`. The
rate limiter's verdict travels back this way: the handler admits the key, and the app adds the
`X-RateLimit-*` headers to whatever response goes out, the error responses too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.types import Scope

_KEY = "kallrec"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    # The X-RateLimit-* headers of the key's admission; empty until a key is admitted.
    rate_headers: Mapping[str, str] = field(default_factory=dict)
    # Set by the playback-link handlers (issue 16): the app adds CORS headers to the response,
    # errors included. No other response carries them.
    cors: bool = False

    def install(self, scope: Scope) -> None:
        scope.setdefault("state", {})[_KEY] = self


def request_context(scope: Scope) -> RequestContext:
    context: RequestContext = scope["state"][_KEY]
    return context
