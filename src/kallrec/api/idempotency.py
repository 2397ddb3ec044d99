"""``Idempotency-Key`` on creating POSTs and on ending a session, as Kallglot's newer docs list
them (scope: organization and mode; kept 24 hours).

A replay returns the first response's status and body. Only successful responses are kept: a
request that failed validation can be corrected and sent again under the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import anyio
from starlette.requests import Request
from starlette.responses import Response

from kallrec import timeutil
from kallrec.api.common import runtime
from kallrec.errors import Conflict, InvalidRequest
from kallrec.principal import Principal

KEEP_SECONDS = 24 * 3600
MAX_KEY_CHARS = 255


def request_fingerprint(method: str, path: str, body_digest: str) -> str:
    return hashlib.sha256(f"{method} {path}\n{body_digest}".encode()).hexdigest()


async def idempotent(
    request: Request,
    principal: Principal,
    body: bytes | str,
    run: Callable[[], Awaitable[Response]],
) -> Response:
    """Runs ``run`` once per Idempotency-Key; ``body`` is the raw body or its SHA-256 hex."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return await run()
    if not key.strip() or len(key) > MAX_KEY_CHARS:
        raise InvalidRequest(
            f"Invalid Idempotency-Key: 1 to {MAX_KEY_CHARS} characters.", param="Idempotency-Key"
        )
    digest = body if isinstance(body, str) else hashlib.sha256(body).hexdigest()
    fingerprint = request_fingerprint(request.method, request.url.path, digest)
    repo = runtime(request).repo
    scope = (principal.org_id, principal.livemode, key)
    existing = await anyio.to_thread.run_sync(
        repo.begin_idempotent, *scope, fingerprint, timeutil.now(), KEEP_SECONDS
    )
    if existing is not None:
        if existing["request_hash"] != fingerprint:
            raise InvalidRequest(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_mismatch",
                param="Idempotency-Key",
            )
        if existing["status"] == "running":
            raise Conflict(
                "A request with this Idempotency-Key is still being processed.",
                code="idempotency_conflict",
                retry_after=1,
            )
        return Response(
            existing["response_body"].encode(),
            status_code=existing["response_status"],
            media_type="application/json",
            headers={"idempotent-replayed": "true"},
        )
    try:
        response = await run()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(repo.finish_idempotent, *scope, 0, None)
        raise
    await anyio.to_thread.run_sync(
        repo.finish_idempotent, *scope, response.status_code, bytes(response.body)
    )
    return response
