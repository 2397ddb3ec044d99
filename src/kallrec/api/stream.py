"""The session stream: /v1/sessions/{id}/connect?token=kst_… (spec §6).

One connection carries both speakers of a call. Every audio chunk is written to its speaker's
track at once (see live/tracks.py); nothing is held in memory, so neither a dropped connection
nor a killed server loses what was received.

The token comes from ``?token=`` (the newer Kallglot docs) or, as the older docs preferred, from
``Authorization: Bearer kst_…`` at connect. When both are there the query's is used: clients
that send their API key in ``Authorization`` on every request (a common HTTP client default)
must not have it taken for the stream token.

The older protocol's ``control`` messages belong to the connection that sends them: ``mute``
(of one speaker, or both) lasts until ``unmute`` or until that connection closes; a reconnect
starts unmuted, as a new stream did in the older docs.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import time
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kallrec import timeutil
from kallrec.db.models import Session
from kallrec.download_links import signing_secret
from kallrec.events import session_event
from kallrec.lifecycle import end_session
from kallrec.live import stream_tokens
from kallrec.live.messages import (
    MAX_MESSAGE_BYTES,
    AudioChunk,
    Control,
    End,
    Ping,
    StreamError,
    parse,
)
from kallrec.runtime import Runtime

log = logging.getLogger("kallrec.stream")

CLOSE_TOKEN_EXPIRED = 4001
CLOSE_WRONG_SESSION = 4003
CLOSE_SESSION_ENDED = 4009
# How often a quiet connection checks whether its session was ended elsewhere.
STATUS_CHECK_SECONDS = 5.0
# Stamping last_audio_at more often than this only costs database writes.
TOUCH_SECONDS = 10.0
# Per connection: sustained messages per second, and the burst allowed above it.
RATE_PER_SECOND = 200.0
BURST = 400.0


class _Bucket:
    def __init__(self) -> None:
        self.tokens = BURST
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.stamp) * RATE_PER_SECOND)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def _refuse(ws: WebSocket, close_code: int, code: str, message: str) -> None:
    await ws.send_json({"type": "session.error", "code": code, "message": message})
    await ws.close(close_code)


async def _admit(rt: Runtime, ws: WebSocket, session_id: str) -> Session | None:
    """The session if the token opens it, after telling the client why not otherwise.

    Only a token issued for this very session learns anything about it (that it ended: 4009);
    any other is invalid (4001) whatever the session's state, owner or existence."""
    token = ws.query_params.get("token") or _bearer(ws.headers.get("authorization"))
    secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
    session = None
    if stream_tokens.issued_for(token, session_id, secret):
        session = await anyio.to_thread.run_sync(rt.repo.get_session_any, session_id)
    elif token:
        # The current token of some session (the MAC may be another host's, or an older shape).
        session = await anyio.to_thread.run_sync(rt.repo.get_session_by_token, token)
        if session is not None and session.id != session_id:
            await _refuse(
                ws, CLOSE_WRONG_SESSION, "wrong_session", "This token is for another session."
            )
            return None
    if session is None:
        await _refuse(
            ws,
            CLOSE_TOKEN_EXPIRED,
            "invalid_token",
            "The stream token is invalid or expired; GET the session for a fresh one.",
        )
        return None
    if session.status == "ended":
        await _refuse(ws, CLOSE_SESSION_ENDED, "session_ended", "This session has ended.")
        return None
    current = session.stream_token or ""
    if (
        not hmac.compare_digest(token.encode(), current.encode())
        or not stream_tokens.current_shape(token)
        or (session.stream_token_expires_at or 0) < timeutil.now()
    ):
        await _refuse(
            ws,
            CLOSE_TOKEN_EXPIRED,
            "token_expired",
            "The stream token has expired or was replaced; GET the session for a fresh one.",
        )
        return None
    return session


def _bearer(header: str | None) -> str:
    """The credentials of ``Authorization: Bearer …``, or "" (any other scheme: no token)."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


async def session_stream(ws: WebSocket) -> None:
    rt: Runtime = ws.app.start()
    session_id = ws.path_params["session_id"]
    await ws.accept()
    session = await _admit(rt, ws, session_id)
    if session is None:
        return
    session = await anyio.to_thread.run_sync(
        rt.repo.start_session, session_id, rt.settings.node, session_event("session.started")
    )
    tracks, ended = rt.live.connect(session_id)
    try:
        await ws.send_json({"type": "session.ready", "session_id": session_id})
        await _serve(rt, ws, session, tracks, ended)
    except WebSocketDisconnect:
        pass
    finally:
        rt.live.disconnect(session_id)


async def _serve(
    rt: Runtime, ws: WebSocket, session: Session, tracks: Any, ended: anyio.Event
) -> None:
    # Receiving is never interrupted by a timeout (a cancelled receive could drop a message that
    # was arriving at that moment): a separate task watches for the session ending elsewhere.
    state = _Closing()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_for_end, rt, ws, session.id, ended, state)
        try:
            await _receive_loop(rt, ws, session, tracks, state)
        finally:
            tg.cancel_scope.cancel()


class _Closing:
    """Set once this connection has started to say goodbye, so only one session.ended is sent."""

    def __init__(self) -> None:
        self.started = False


async def _watch_for_end(
    rt: Runtime, ws: WebSocket, session_id: str, ended: anyio.Event, state: _Closing
) -> None:
    while True:
        with anyio.move_on_after(STATUS_CHECK_SECONDS):
            await ended.wait()
        if state.started:
            return
        if ended.is_set() or await _ended_elsewhere(rt, session_id):
            if not state.started:
                state.started = True
                with contextlib.suppress(Exception):  # the client may be gone already
                    await _finish(ws, session_id, "ended")
            return


async def _receive_loop(
    rt: Runtime, ws: WebSocket, session: Session, tracks: Any, state: _Closing
) -> None:
    bucket = _Bucket()
    muted: set[str] = set()  # speakers this connection muted (older protocol's control)
    last_touch = time.monotonic()
    max_jump_ms = round(rt.settings.stream_max_timestamp_jump_seconds * 1000)
    while True:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):  # closed, by the client or by the watcher
            return
        if message["type"] == "websocket.disconnect" or state.started:
            return
        if len(message.get("text") or message.get("bytes") or "") > MAX_MESSAGE_BYTES:
            # Spec §9: the connection ends (1009, "message too big"); what was received before
            # is kept. Granian has already buffered the frame: see SECURITY.md.
            await _error(
                ws, "message_too_large", f"Messages are limited to {MAX_MESSAGE_BYTES} bytes."
            )
            await ws.close(1009)
            return
        if not bucket.take():
            await _error(ws, "rate_limited", "Too many messages; slow down.")
            continue
        text = message.get("text")
        if text is None:
            await _error(ws, "invalid_message", "Send JSON text frames, not binary.")
            continue
        try:
            parsed = parse(text)
            if isinstance(parsed, AudioChunk) and session.recording_enabled:
                # Refused (timestamp_out_of_range) before anything is written.
                tracks.write(
                    parsed.speaker,
                    parsed.timestamp_ms,
                    parsed.mulaw,
                    max_jump_ms=max_jump_ms,
                    muted=parsed.speaker in muted,
                )
        except StreamError as exc:
            await _error(ws, exc.code, exc.message)
            continue
        if isinstance(parsed, AudioChunk):
            if session.recording_enabled and time.monotonic() - last_touch > TOUCH_SECONDS:
                last_touch = time.monotonic()
                await anyio.to_thread.run_sync(
                    rt.repo.touch_session_audio, session.id, timeutil.now()
                )
        elif isinstance(parsed, Ping):
            await ws.send_json({"type": "pong", "session_id": session.id})
        elif isinstance(parsed, Control):
            # pause_transcription / resume_transcription: kallrec makes no transcripts.
            if parsed.action == "mute":
                muted.update(parsed.speakers)
            elif parsed.action == "unmute":
                muted.difference_update(parsed.speakers)
        elif isinstance(parsed, End):
            state.started = True
            await anyio.to_thread.run_sync(tracks.sync)
            await end_session(rt, session.org_id, session.livemode, session.id)
            await _finish(ws, session.id, "explicit_end")
            return


async def _ended_elsewhere(rt: Runtime, session_id: str) -> bool:
    current = await anyio.to_thread.run_sync(rt.repo.get_session_any, session_id)
    return current is None or current.status == "ended"


async def _error(ws: WebSocket, code: str, message: str) -> None:
    await ws.send_json({"type": "session.error", "code": code, "message": message})


async def _finish(ws: WebSocket, session_id: str, reason: str) -> None:
    if ws.client_state == WebSocketState.CONNECTED:
        await ws.send_json({"type": "session.ended", "session_id": session_id, "reason": reason})
        await ws.close(1000)
