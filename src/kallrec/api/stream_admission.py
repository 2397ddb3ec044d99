"""Who may write to a session's stream: its stream token, checked once, at connect (spec §6).

Shared by Kallglot's own protocol (api/stream.py), whose token is in the URL or the
``Authorization`` header, and the carriers' (api/carrier_stream.py), whose token may also come in
their first frames. Refusals are the spec's: a ``session.error`` and then the close code.
"""

from __future__ import annotations

import hmac

import anyio
from starlette.websockets import WebSocket

from kallrec import timeutil
from kallrec.db.models import Session
from kallrec.download_links import signing_secret
from kallrec.live import stream_tokens
from kallrec.runtime import Runtime

CLOSE_TOKEN_EXPIRED = 4001
CLOSE_WRONG_SESSION = 4003
CLOSE_SESSION_ENDED = 4009


async def refuse(ws: WebSocket, close_code: int, code: str, message: str) -> None:
    await ws.send_json({"type": "session.error", "code": code, "message": message})
    await ws.close(close_code)


async def refuse_invalid(ws: WebSocket) -> None:
    await refuse(
        ws,
        CLOSE_TOKEN_EXPIRED,
        "invalid_token",
        "The stream token is invalid or expired; GET the session for a fresh one.",
    )


def url_token(ws: WebSocket) -> str:
    """``?token=`` (the newer Kallglot docs) or ``Authorization: Bearer`` (the older ones). When
    both are there the query's is used: clients that send their API key in ``Authorization`` on
    every request (a common HTTP client default) must not have it taken for the stream token.
    Telnyx sends a streaming auth token (``stream_auth_token``) in its own header."""
    return (
        ws.query_params.get("token")
        or bearer(ws.headers.get("authorization"))
        or ws.headers.get("x-telnyx-streaming-auth-token", "")
    )


def bearer(header: str | None) -> str:
    """The credentials of ``Authorization: Bearer …``, or "" (any other scheme: no token)."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


async def admit(rt: Runtime, ws: WebSocket, session_id: str, token: str) -> Session | None:
    """The session if the token opens it, after telling the client why not otherwise.

    Only a token issued for this very session learns anything about it (that it ended: 4009);
    any other is invalid (4001) whatever the session's state, owner or existence."""
    secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
    session = None
    if stream_tokens.issued_for(token, session_id, secret):
        session = await anyio.to_thread.run_sync(rt.repo.get_session_any, session_id)
    elif token:
        # The current token of some session (the MAC may be another host's, or an older shape).
        session = await anyio.to_thread.run_sync(rt.repo.get_session_by_token, token)
        if session is not None and session.id != session_id:
            await refuse(
                ws, CLOSE_WRONG_SESSION, "wrong_session", "This token is for another session."
            )
            return None
    if session is None:
        await refuse_invalid(ws)
        return None
    if session.status == "ended":
        await refuse(ws, CLOSE_SESSION_ENDED, "session_ended", "This session has ended.")
        return None
    current = session.stream_token or ""
    if (
        not hmac.compare_digest(token.encode(), current.encode())
        or not stream_tokens.current_shape(token)
        or (session.stream_token_expires_at or 0) < timeutil.now()
    ):
        await refuse(
            ws,
            CLOSE_TOKEN_EXPIRED,
            "token_expired",
            "The stream token has expired or was replaced; GET the session for a fresh one.",
        )
        return None
    return session
