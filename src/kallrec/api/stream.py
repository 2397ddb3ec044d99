"""The session stream: /v1/sessions/{id}/connect?token=kst_… (spec §6).

One connection carries both speakers of a call. Every audio chunk is written to its speaker's
track at once (see live/tracks.py), and this process's flusher sends it to storage within
``KALLREC_LIVE_FLUSH_SECONDS`` (live/flush.py): a dropped connection loses nothing, a killed
replica at most what it had not flushed. A reconnect may land on any replica and continues the
same tracks (the client's timestamps place the audio); an end through any replica closes this
socket (live/notify.py). A carrier's media stream on the same URL is served by
api/carrier_stream.py, through the same tracks.

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
import json
import logging
import time
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from kallrec import routing, timeutil
from kallrec.api import carrier_stream
from kallrec.api.older_audio import OlderAudio
from kallrec.api.stream_admission import admit, url_token
from kallrec.carriers import dialects
from kallrec.db.models import Session
from kallrec.events import session_event
from kallrec.lifecycle import end_session
from kallrec.live.flush import register_writer
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

# How often a quiet connection checks whether its session was ended elsewhere.
STATUS_CHECK_SECONDS = 5.0
# How long a session routed through a carrier waits for the first frame before session.ready.
READY_WAIT_SECONDS = 0.5
# Sessions whose stream a carrier may open (routing.type); "sip" is not a media stream.
CARRIERS = tuple(c for c in routing.CARRIERS if c != "sip")
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


async def session_stream(ws: WebSocket) -> None:
    rt: Runtime = ws.app.start()
    session_id = ws.path_params["session_id"]
    await ws.accept()
    accepted_ms = round(timeutil.now() * 1000)  # a carrier stream's time counts from here
    token = url_token(ws)
    if not token:
        # Twilio's Stream URL takes no query string: a carrier may show its token in its first
        # frames. Kallglot's own protocol without a token is refused there (4001).
        await carrier_stream.serve_unauthenticated(rt, ws, session_id, accepted_ms)
        return
    session = await admit(rt, ws, session_id, token)
    if session is None:
        return
    session = await anyio.to_thread.run_sync(
        rt.repo.start_session, session_id, rt.settings.node, session_event("session.started")
    )
    tracks, ended = rt.live.connect(session_id)
    handed_over: dict[str, Any] | None = None
    try:
        await register_writer(rt.live, rt.live_repo, session_id)
        handed_over = await _serve(rt, ws, session, tracks, ended)
    except WebSocketDisconnect:
        pass
    finally:
        rt.live.disconnect(session_id)
    if handed_over is not None:
        # A carrier given the token in its URL (Telnyx Call Control, Plivo, Vonage's uri).
        await carrier_stream.serve(rt, ws, session, [handed_over], None, accepted_ms)


async def _serve(
    rt: Runtime, ws: WebSocket, session: Session, tracks: Any, ended: anyio.Event
) -> dict[str, Any] | None:
    """Serves Kallglot's protocol; returns the first frame instead when it is a carrier's."""
    # Receiving is never interrupted by a timeout (a cancelled receive could drop a message that
    # was arriving at that moment): a separate task watches for the session ending elsewhere.
    state = _Closing()
    ready = _Ready(session.id)
    async with anyio.create_task_group() as tg:
        if session.provider in CARRIERS:
            # A carrier given its token in the URL may be on the line: its first frame comes at
            # once, and it is sent nothing it could misread (api/carrier_stream.py). A client of
            # Kallglot's protocol, waiting for session.ready, gets it a moment later.
            tg.start_soon(ready.send_later, ws, READY_WAIT_SECONDS)
        else:
            await ready.send(ws)
        tg.start_soon(_watch_for_end, rt, ws, session.id, ended, state)
        try:
            handed_over = await _receive_loop(rt, ws, session, tracks, state, ready)
        finally:
            tg.cancel_scope.cancel()
    return handed_over


class _Ready:
    """``session.ready``, sent once: at connect, or (a carrier's session) when the first frame
    is not a carrier's or none came within READY_WAIT_SECONDS."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.sent = False
        self.withheld = False  # the stream turned out to be a carrier's

    async def send(self, ws: WebSocket) -> None:
        if self.sent or self.withheld:
            return
        self.sent = True
        await ws.send_json({"type": "session.ready", "session_id": self.session_id})

    async def send_later(self, ws: WebSocket, seconds: float) -> None:
        await anyio.sleep(seconds)
        await self.send(ws)


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
    rt: Runtime, ws: WebSocket, session: Session, tracks: Any, state: _Closing, ready: _Ready
) -> dict[str, Any] | None:
    bucket = _Bucket()
    first = True
    older_audio = OlderAudio(session.id)
    muted: set[str] = set()  # speakers this connection muted (older protocol's control)
    # The first chunk of every connection stamps the session: a call that reconnects often
    # (to any replica) is never taken for idle.
    last_touch = -TOUCH_SECONDS
    max_jump_ms = round(rt.settings.stream_max_timestamp_jump_seconds * 1000)
    while True:
        try:
            message = await ws.receive()
        except (WebSocketDisconnect, RuntimeError):  # closed, by the client or by the watcher
            return None
        if message["type"] == "websocket.disconnect" or state.started:
            return None
        if len(message.get("text") or message.get("bytes") or "") > MAX_MESSAGE_BYTES:
            # Spec §9: the connection ends (1009, "message too big"); what was received before
            # is kept. Granian has already buffered the frame: see SECURITY.md.
            await _error(
                ws, "message_too_large", f"Messages are limited to {MAX_MESSAGE_BYTES} bytes."
            )
            await ws.close(1009)
            return None
        if not bucket.take():
            await _error(ws, "rate_limited", "Too many messages; slow down.")
            continue
        text = message.get("text")
        if first:
            first = False
            carrier_frame = _carrier_frame(text)
            if carrier_frame is not None:
                # (When session.ready went out already, the carrier saw a frame of no meaning
                # to it: carriers key their frames on "event", kallrec's on "type".)
                ready.withheld = True
                state.started = True  # the watcher says nothing to a carrier
                return carrier_frame
            await ready.send(ws)
        if text is None:
            await _error(ws, "invalid_message", "Send JSON text frames, not binary.")
            continue
        try:
            if OlderAudio.matches(text):
                # Kallglot's older `audio` message: no speaker, no time (api/older_audio.py).
                if session.recording_enabled:
                    older_audio.write(text, tracks, max_jump_ms=max_jump_ms, muted=muted)
                    if time.monotonic() - last_touch > TOUCH_SECONDS:
                        last_touch = time.monotonic()  # its audio keeps the session alive too
                        await anyio.to_thread.run_sync(
                            rt.repo.touch_session_audio, session.id, timeutil.now()
                        )
                continue
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
            # What this connection wrote is flushed when it goes; the finalize job waits for it.
            await end_session(rt, session.org_id, session.livemode, session.id)
            await _finish(ws, session.id, "explicit_end")
            return None


def _carrier_frame(text: str | None) -> dict[str, Any] | None:
    """The first frame as a carrier's JSON object, or None when it is not one."""
    if text is None or '"event"' not in text:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and dialects.is_carrier_frame(data) else None


async def _ended_elsewhere(rt: Runtime, session_id: str) -> bool:
    current = await anyio.to_thread.run_sync(rt.repo.get_session_any, session_id)
    return current is None or current.status == "ended"


async def _error(ws: WebSocket, code: str, message: str) -> None:
    await ws.send_json({"type": "session.error", "code": code, "message": message})


async def _finish(ws: WebSocket, session_id: str, reason: str) -> None:
    if ws.client_state == WebSocketState.CONNECTED:
        await ws.send_json({"type": "session.ended", "session_id": session_id, "reason": reason})
        await ws.close(1000)
