"""What every /v1 handler shares: the caller, JSON in and out, list parameters."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope, Send

from kallrec import timeutil, validation
from kallrec.api.context import RequestContext, request_context
from kallrec.auth import extract_key
from kallrec.db.repository import Page, UnknownCursor
from kallrec.errors import InvalidRequest, PayloadTooLarge
from kallrec.principal import Principal
from kallrec.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.runtime  # Starlette types request.app as Any; App sets it
    return rt


def request_headers(scope: Scope) -> dict[str, str]:
    """The request's headers decoded once; the first of repeated headers wins, as in Starlette."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in reversed(scope["headers"])}


async def authorize_caller(
    rt: Runtime, headers: Mapping[str, str], context: RequestContext, scope: str
) -> Principal:
    """Authenticates the key, admits the request under the key's rate limit, checks the scope."""
    principal = await rt.auth.authenticate(extract_key(headers))
    # Admitted before the scope check, so that a 403 still tells the caller where it stands
    # (a 429 carries its own X-RateLimit-* headers).
    context.rate_headers = rt.limiter.admit(principal.key_id)
    principal.require(scope)
    return principal


async def authorize(request: Request, scope: str) -> Principal:
    context = request_context(request.scope)
    return await authorize_caller(runtime(request), request.headers, context, scope)


def json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(json_bytes(payload), status_code=status, media_type="application/json")


async def send_json(scope: Scope, send: Send, body: bytes, status: int = 200) -> None:
    """What json_response sends, for plain ASGI endpoints; HEAD gets the headers only."""
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


# JSON bodies are small objects; anything bigger is refused before it fills memory.
MAX_JSON_BYTES = 1024 * 1024


async def read_body(request: Request) -> bytes:
    """The request body, at most MAX_JSON_BYTES (Starlette caches it for later reads)."""
    declared = request.headers.get("content-length", "")
    too_large = PayloadTooLarge(
        f"The request body is larger than {MAX_JSON_BYTES:,} bytes.", code="request_too_large"
    )
    if declared.isdigit() and int(declared) > MAX_JSON_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise too_large
        chunks.append(chunk)
    # Starlette's own cache of the body: later reads (json_body after read_body) reuse it.
    request._body = b"".join(chunks)
    return request._body


class _NonFinite(Exception):
    pass


def _no_constant(name: str) -> None:
    # Python reads NaN and Infinity, which JSON has not: kept, they would make every later
    # answer that echoes them invalid JSON.
    raise _NonFinite(name)


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_body(request)
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.") from None
    except _NonFinite as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc} is not a JSON number."
        ) from None
    except RecursionError:
        raise InvalidRequest("The request body is nested too deeply.") from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise InvalidRequest("The request body holds a number too long to read.") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    validation.encodable(parsed)
    return parsed


T = TypeVar("T")


async def fetch_page(listing: Callable[[], tuple[list[T], bool]]) -> tuple[list[T], bool]:
    """A repository listing run off the event loop: its rows and has_more. A cursor naming no
    object of the list is the client's mistake (400, the cursor's parameter)."""
    try:
        return await anyio.to_thread.run_sync(listing)
    except UnknownCursor as exc:
        raise InvalidRequest(
            f"No such object for {exc.param}: '{exc.value}'", param=exc.param
        ) from None


def optional_choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """Query parameter ``name``, one of ``allowed`` when present."""
    value = request.query_params.get(name)
    return None if value is None else one_of(value, allowed, name)


def page_params(request: Request) -> Page:
    q = request.query_params
    raw_limit = q.get("limit", "20")
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise InvalidRequest(
            f"Invalid limit: {raw_limit!r}. It must be an integer between 1 and 100.",
            param="limit",
        )
    after, before = q.get("starting_after"), q.get("ending_before")
    if after and before:
        raise InvalidRequest(
            "Use starting_after or ending_before, not both.", param="ending_before"
        )
    return Page(limit=limit, starting_after=after or None, ending_before=before or None)


# Unix seconds as the OpenAPI document describes them: ASCII digits and at most one dot.
_UNIX_SECONDS = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
# RFC 3339 allows a leap second (23:59:60), which datetime cannot hold: read it as :59 plus 1 s.
_LEAP_SECOND = re.compile(r"(.*[Tt ]\d\d:\d\d:)60(.*)")


def created_bound(request: Request, name: str) -> float | None:
    """A ``created[gte]``/``created[lt]`` bound as Unix seconds, or None when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        if _UNIX_SECONDS.fullmatch(raw):
            return float(raw)
        leap = _LEAP_SECOND.fullmatch(raw)
        if leap:
            return timeutil.parse_iso(f"{leap[1]}59{leap[2]}") + 1
        return timeutil.parse_iso(raw)
    except ValueError:
        raise InvalidRequest(
            f"Invalid {name}: {raw[:40]!r}. Use an RFC 3339 timestamp, a date or Unix seconds.",
            param=name,
        ) from None


def list_object(data: list[dict[str, Any]], has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def one_of(value: Any, allowed: tuple[str, ...], param: str) -> str:
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise InvalidRequest(f"Invalid {param}: {value!r}. Expected one of {choices}.", param=param)
    return str(value)
