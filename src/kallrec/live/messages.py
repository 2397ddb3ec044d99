"""The client → server messages of the session stream (spec §6), parsed and checked.

Besides the newer Kallglot protocol (``audio.input``, ``ping``, ``session.end``), the older one's
``{"type": "end"}`` (the same as ``session.end``) and ``{"type": "control", "action": …}``
messages are understood. The older ``audio`` message is not (yet): it is the carriers issue's.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from dataclasses import dataclass

SPEAKERS = ("agent", "customer")
MAX_MESSAGE_BYTES = 256 * 1024
# Chunks are ~20-200 ms; two seconds of μ-law is a generous ceiling.
MAX_CHUNK_BYTES = 16_000
# The client's clock, whatever its origin (0, 30,000, epoch ms): any integer JSON carries exactly.
# Where a chunk may land relative to the session's audio is live/timeline.py's business.
MAX_TIMESTAMP_MS = 2**53
MAX_SEQUENCE = 2**53


class StreamError(Exception):
    """A message the server refuses; sent back as ``session.error`` (the stream stays open)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AudioChunk:
    speaker: str
    sequence: int
    timestamp_ms: int
    mulaw: bytes


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class End:
    pass


@dataclass(frozen=True)
class Control:
    """The older protocol's ``control`` message. ``mute``/``unmute`` name the speakers they
    apply to: the message's optional ``speaker`` (a kallrec extension), else both."""

    action: str
    speakers: tuple[str, ...] = SPEAKERS


Message = AudioChunk | Ping | End | Control

# The older docs' actions: mute and unmute stop and resume writing audio (the track keeps its
# timeline, so what was muted is silence); kallrec makes no transcripts, so pausing them is a
# no-op.
MUTING_ACTIONS = ("mute", "unmute")
IGNORED_ACTIONS = ("pause_transcription", "resume_transcription")
CONTROL_ACTIONS = MUTING_ACTIONS + IGNORED_ACTIONS


def _int(value: object, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= upper:
        raise StreamError("invalid_message", f"'{name}' must be an integer from 0 to {upper}.")
    return value


def parse(text: str) -> Message:
    if len(text) > MAX_MESSAGE_BYTES:
        raise StreamError(
            "message_too_large", f"Messages are limited to {MAX_MESSAGE_BYTES} bytes."
        )
    try:
        data = json.loads(text)
    # ValueError: JSONDecodeError, and integers longer than Python converts (4,300 digits).
    except (ValueError, RecursionError):
        raise StreamError("invalid_json", "The message is not valid JSON.") from None
    if not isinstance(data, dict):
        raise StreamError("invalid_message", "A message must be a JSON object.")
    kind = data.get("type")
    if kind == "ping":
        return Ping()
    if kind in ("session.end", "end"):  # "end": the older docs' spelling
        return End()
    if kind == "control":
        return _control(data)
    if kind != "audio.input":
        raise StreamError("unknown_message_type", f"Unknown message type: {kind!r}.")
    speaker = data.get("speaker")
    if speaker not in SPEAKERS:
        raise StreamError("invalid_message", "'speaker' must be 'agent' or 'customer'.")
    audio = data.get("audio")
    if not isinstance(audio, dict):
        raise StreamError("invalid_message", "'audio' must be an object.")
    if audio.get("encoding") != "mulaw" or audio.get("sample_rate_hz") != 8000:
        raise StreamError(
            "invalid_audio_format", "Audio must be μ-law ('mulaw') at 8000 Hz ('sample_rate_hz')."
        )
    payload = audio.get("payload")
    if not isinstance(payload, str):
        raise StreamError("invalid_message", "'audio.payload' must be a base64 string.")
    try:
        mulaw = b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise StreamError("invalid_message", "'audio.payload' is not valid base64.") from None
    if len(mulaw) > MAX_CHUNK_BYTES:
        raise StreamError(
            "message_too_large", f"An audio chunk is limited to {MAX_CHUNK_BYTES} samples."
        )
    return AudioChunk(
        speaker=speaker,
        sequence=_int(data.get("sequence"), "sequence", MAX_SEQUENCE),
        timestamp_ms=_int(data.get("timestamp_ms"), "timestamp_ms", MAX_TIMESTAMP_MS),
        mulaw=mulaw,
    )


def _control(data: dict[str, object]) -> Control:
    action = data.get("action")
    if action not in CONTROL_ACTIONS:
        raise StreamError(
            "unknown_control_action",
            f"Unknown control action: {_shown(action)}. "
            f"Expected one of {', '.join(CONTROL_ACTIONS)}.",
        )
    speaker = data.get("speaker")
    if speaker is None:
        return Control(str(action))
    if speaker not in SPEAKERS:
        raise StreamError(
            "invalid_message", "'speaker' must be 'agent' or 'customer', or absent for both."
        )
    return Control(str(action), (str(speaker),))


def _shown(value: object) -> str:
    """A refused value as a message quotes it: never more than a few dozen characters."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
