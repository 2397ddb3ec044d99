"""Carrier media streams on a session's stream URL (issue 14, spec §6.1).

Kallglot's guides point the carrier at ``session.stream.url`` itself, so this handler takes over
``/v1/sessions/{id}/connect`` whenever the frames are a carrier's (kallrec/carriers/dialects.py):

- **Authentication.** With ``?token=`` (or ``Authorization: Bearer``) the stream is admitted at
  connect, as Kallglot's own protocol is (api/stream.py hands the stream over on its first
  carrier frame). Without one, the token must come in the first frames within
  ``KALLREC_CARRIER_AUTH_SECONDS`` (5 s): Twilio/SignalWire and Telnyx ``<Parameter
  name="token">`` (``start.customParameters``/``custom_parameters``), Vonage's NCCO ``headers``
  (its first frame), Plivo's ``token`` extra header. Frames before it are held (a bounded few),
  none is written; a stream that never shows one is refused like a bad token (``session.error``
  ``invalid_token``, close 4001), having cost a few parsed frames. The other refusals are the
  spec's too (4003 for a token or ``session_id`` of another session, 4009 for an ended one).
- **Nothing the carrier would misread is sent.** Carriers key their frames on ``event``; kallrec
  sends nothing at all on an admitted carrier stream (a bidirectional ``<Connect><Stream>`` plays
  what it receives), and broken or unknown frames are skipped, never answered.
- **Audio** goes through the same track writer as ``audio.input`` (placement, duplicates,
  gaps: live/tracks.py), converted to 8 kHz μ-law (carriers/codec.py), each track on the speaker
  the session's direction gives it (carriers/speakers.py), at the time carriers/clock.py says.
  Too fast a sender is slowed down (its frames are read later), never dropped: audio is lost
  nowhere between a carrier and the tracks.
- **The end.** ``stop`` (or a close without it) ends this stream; once no stream of the session
  has been connected for ``KALLREC_CARRIER_END_GRACE_SECONDS`` the session ends (reason
  ``completed``) and its recordings are made, so a reconnect or the call's other leg within
  that time continues the same recording.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketState

from kallrec import timeutil
from kallrec.api.stream_admission import (
    CLOSE_WRONG_SESSION,
    admit,
    refuse,
    refuse_invalid,
)
from kallrec.carriers import codec, dialects, fields, vonage
from kallrec.carriers.clock import RECENT_ENDS, StreamClock, anchor
from kallrec.carriers.events import (
    L16,
    L16_BIG,
    Connected,
    Event,
    Malformed,
    Media,
    MediaFormat,
    Start,
    Stop,
)
from kallrec.carriers.speakers import speaker_for
from kallrec.db.models import Session
from kallrec.events import session_event
from kallrec.lifecycle import end_session
from kallrec.live.flush import register_writer
from kallrec.live.messages import MAX_MESSAGE_BYTES, StreamError
from kallrec.runtime import Runtime

log = logging.getLogger("kallrec.carriers")

# Frames read while waiting for the token: Twilio needs two (connected, start), Vonage one.
AUTH_FRAMES = 32
# Per stream: frames per second sustained, and the burst above it, before reading slows down.
# A carrier sends 50 a second per track; a recorded call replayed a hundred times faster still
# passes unslowed (its end must not wait on the bucket), a flood does not take a whole core.
RATE_PER_SECOND = 10_000.0
BURST = 20_000.0
TOUCH_SECONDS = 10.0
# How often a stream checks that its session was not ended by another worker.
STATUS_CHECK_SECONDS = 5.0

Frame = dict[str, Any] | bytes


class _Pace:
    """A token bucket that waits instead of refusing."""

    def __init__(self) -> None:
        self.tokens = BURST
        self.stamp = time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.stamp) * RATE_PER_SECOND)
        self.stamp = now
        if self.tokens < 1:
            await anyio.sleep((1 - self.tokens) / RATE_PER_SECOND)
            self.tokens = 1
        self.tokens -= 1


async def _receive(ws: WebSocket) -> Frame | None:
    """The next frame (JSON object or binary), None once the stream is closed. Text that is no
    JSON object is skipped; a frame above the size limit closes the stream (1009, spec §9)."""
    while True:
        try:
            message = await ws.receive()
        except RuntimeError:  # closed already
            return None
        if message["type"] == "websocket.disconnect":
            return None
        text, binary = message.get("text"), message.get("bytes")
        if len(text or binary or "") > MAX_MESSAGE_BYTES:
            with contextlib.suppress(Exception):
                await ws.close(1009)
            return None
        if binary is not None:
            return bytes(binary)
        try:
            return fields.load(text or "")
        except Malformed:
            continue


def parse_frame(frame: Frame, dialect: str | None) -> Event | None:
    """The frame's event, or None when it is broken or of no known dialect (skipped)."""
    try:
        if isinstance(frame, bytes):
            return vonage.parse_binary(frame) if dialect == dialects.VONAGE else None
        found = dialect or dialects.detect(frame)
        if found is None:
            return Connected() if frame.get("event") == "connected" else None
        return dialects.PARSERS[found](frame)
    except Malformed as exc:
        log.debug("skipped a malformed %s frame: %s", dialect, exc)
        return None


async def serve_unauthenticated(
    rt: Runtime, ws: WebSocket, session_id: str, accepted_ms: int
) -> None:
    """A stream that connected without a token: it must show one in its first frames."""
    held: list[Frame] = []
    dialect: str | None = None
    start: Start | Connected | None = None
    with anyio.move_on_after(rt.settings.carrier_auth_seconds):
        while len(held) < AUTH_FRAMES:
            frame = await _receive(ws)
            if frame is None:
                return
            if isinstance(frame, dict) and not dialects.is_carrier_frame(frame):
                break  # Kallglot's own protocol, which needs its token at connect
            dialect = dialect or (None if isinstance(frame, bytes) else dialects.detect(frame))
            held.append(frame)
            event = parse_frame(frame, dialect)
            if isinstance(event, Start | Connected) and event.token:
                start = event
                break
    if start is None or not start.token:
        if ws.client_state == WebSocketState.CONNECTED:
            await refuse_invalid(ws)
        return
    if isinstance(start, Start) and start.session_id and start.session_id != session_id:
        await refuse(ws, CLOSE_WRONG_SESSION, "wrong_session", "This token is for another session.")
        return
    session = await admit(rt, ws, session_id, start.token)
    if session is not None:
        await serve(rt, ws, session, held, dialect, accepted_ms)


async def serve(
    rt: Runtime,
    ws: WebSocket,
    session: Session,
    held: list[Frame],
    dialect: str | None,
    accepted_ms: int,
) -> None:
    """An admitted carrier stream, from its ``held`` frames on. ``accepted_ms``: when its
    connection was accepted (wall clock), the start its carrier's timestamps count from: two legs
    of a call line up to within their connections' timing, not their admissions' (which wait on
    the database)."""
    session = await anyio.to_thread.run_sync(
        rt.repo.start_session, session.id, rt.settings.node, session_event("session.started")
    )
    tracks, ended = rt.live.connect(session.id)
    stream = _Stream(rt, session, tracks, dialect, accepted_ms)
    stopped = False
    try:
        await register_writer(rt.live, rt.live_repo, session.id)
        stopped = await stream.run(ws, held, ended)
        if stream.announced:
            await anyio.to_thread.run_sync(
                rt.repo.emit_session_event,
                session.id,
                session_event("session.provider.disconnected"),
            )
    finally:
        if stream.clock is not None:
            RECENT_ENDS.note(session.id, stream.clock.end_ms)
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(tracks.sync)
        rt.live.disconnect(session.id)
    closed_at = timeutil.now()
    await anyio.to_thread.run_sync(rt.repo.touch_session_audio, session.id, closed_at)
    if ws.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(1000)
    if not ended.is_set():
        log.info("carrier stream of %s closed (%s)", session.id, "stop" if stopped else "dropped")
        await _end_when_idle(rt, session, closed_at)


async def _end_when_idle(rt: Runtime, session: Session, closed_at: float) -> None:
    """Ends the session unless a stream of it is (or was, meanwhile) connected: here (the
    registry), or on another worker (it stamped the session's audio after this one closed)."""
    await anyio.sleep(rt.settings.carrier_end_grace_seconds)
    if rt.live.tracks(session.id) is not None:
        return
    current = await anyio.to_thread.run_sync(rt.repo.get_session_any, session.id)
    if current is None or current.status == "ended":
        return
    if (current.last_audio_at or 0) > closed_at:
        return
    await end_session(rt, session.org_id, session.livemode, session.id)


@dataclass
class _Stream:
    rt: Runtime
    session: Session
    tracks: Any
    dialect: str | None
    accepted_ms: int
    media_format: MediaFormat = field(default_factory=MediaFormat)
    direction: str | None = None
    order_settled: bool = False
    announced: bool = False  # session.provider.connected sent for this stream
    clock: StreamClock | None = None
    last_touch: float = 0.0

    async def run(self, ws: WebSocket, held: list[Frame], ended: anyio.Event) -> bool:
        """Reads frames until the stream stops (True) or closes (False)."""
        pace = _Pace()
        for frame in held:
            if await self._handle(frame):
                return True
        checked = time.monotonic()
        while not ended.is_set():
            received = await _receive(ws)
            if received is None:
                return False
            await pace.take()
            if await self._handle(received):
                return True
            if time.monotonic() - checked > STATUS_CHECK_SECONDS:
                # Ended through another worker (POST …/end there): stop writing to it.
                checked = time.monotonic()
                current = await anyio.to_thread.run_sync(
                    self.rt.repo.get_session_any, self.session.id
                )
                if current is None or current.status == "ended":
                    return False
        return False

    async def _handle(self, frame: Frame) -> bool:
        if self.dialect is None and isinstance(frame, dict):
            self.dialect = dialects.detect(frame)
        event = parse_frame(frame, self.dialect)
        if isinstance(event, Media):
            self._write(event)
            if time.monotonic() - self.last_touch > TOUCH_SECONDS:
                self.last_touch = time.monotonic()
                await anyio.to_thread.run_sync(
                    self.rt.repo.touch_session_audio, self.session.id, timeutil.now()
                )
        elif isinstance(event, Start):
            self.media_format = event.media_format
            self.direction = event.direction or self.session.direction
            ids = dict(event.carrier_ids)
            if self.dialect:
                ids["carrier"] = dialects.named(self.dialect, self.session.provider)
            # Kallglot's session.provider.connected: the carrier's leg is on, its ids known.
            emit = None if self.announced else session_event("session.provider.connected")
            self.announced = True
            await anyio.to_thread.run_sync(self.rt.repo.add_carrier_ids, self.session.id, ids, emit)
        elif isinstance(event, Stop):
            return True
        return False  # Connected, Dtmf, Mark, Ignored, broken frames: nothing to record

    def _byte_order(self, fmt: MediaFormat, payload: bytes) -> MediaFormat:
        """16-bit PCM in the byte order its audio shows (codec.l16_byte_order), settled by the
        stream's first clearly audible chunk; the declared order until then."""
        if fmt.encoding not in (L16, L16_BIG):
            return fmt
        if not self.order_settled:
            found = codec.l16_byte_order(payload)
            if found is not None:
                self.order_settled = True
                if found != fmt.encoding:
                    log.info("%s: 16-bit audio is %s, not as declared", self.session.id, found)
                    self.media_format = replace(self.media_format, encoding=found)
            return replace(fmt, encoding=found or fmt.encoding)
        return replace(fmt, encoding=self.media_format.encoding)

    def _write(self, media: Media) -> None:
        if not self.session.recording_enabled or not media.payload:
            return
        fmt = self._byte_order(media.media_format or self.media_format, media.payload)
        if self.clock is None:
            self.clock = StreamClock(anchor(self.accepted_ms, RECENT_ENDS.get(self.session.id)))
        try:
            if fmt.channels > 1:
                # Interleaved channels of one track (rare): the first is the track's audio.
                mulaw = codec.split(media.payload, fmt)[0]
            else:
                mulaw = codec.to_mulaw_8k(media.payload, fmt)
        except Malformed:
            return
        if not mulaw:
            return
        at = self.clock.place(media.track, media.timestamp_ms, len(mulaw) / 8)
        speaker = speaker_for(media.track, self.direction or self.session.direction)
        max_jump_ms = round(self.rt.settings.stream_max_timestamp_jump_seconds * 1000)
        try:
            self.tracks.write(speaker, at, mulaw, max_jump_ms=max_jump_ms)
        except StreamError as exc:  # out of the session's range: skipped, as the spec says
            log.debug("skipped a chunk of %s: %s", self.session.id, exc.message)
