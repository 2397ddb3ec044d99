"""What every carrier dialect is turned into: a handful of small values.

A parser returns one of these per frame, or raises ``Malformed`` for a frame it cannot read
(the handler ignores it and goes on: a carrier never expects an answer to a broken frame).
Unknown events are ``Ignored``, never an error: carriers add events without notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Encodings after normalisation (codec.py converts each to the writer's 8 kHz μ-law).
MULAW = "mulaw"
ALAW = "alaw"
L16 = "l16"  # signed 16-bit little-endian
L16_BIG = "l16be"  # signed 16-bit big-endian (RTP's network order)
PCM8 = "pcm8"  # unsigned 8-bit
# A format kallrec cannot decode (Telnyx's G722, OPUS, AMR-WB...): the stream is admitted and its
# ids kept, its audio skipped.
UNSUPPORTED = "unsupported"
ENCODINGS = (MULAW, ALAW, L16, L16_BIG, PCM8)
MIN_RATE = 8000
MAX_RATE = 48000


class Malformed(Exception):
    """A frame that cannot be read (bad JSON, a missing or wrong-typed field, bad base64)."""


@dataclass(frozen=True)
class MediaFormat:
    encoding: str = MULAW
    rate: int = 8000
    channels: int = 1


@dataclass(frozen=True)
class Connected:
    """The carrier's hello before ``start`` (Twilio, SignalWire, Telnyx): nothing to act on,
    except the authentication material some carriers put there."""

    token: str | None = None


@dataclass(frozen=True)
class Start:
    """A stream begins. ``tracks`` as the carrier names them (``inbound``/``outbound``, or
    ``mixed`` for a single mixed stream); ``carrier_ids`` are kept on the session."""

    media_format: MediaFormat
    tracks: tuple[str, ...] = ("inbound",)
    stream_id: str | None = None
    token: str | None = None
    session_id: str | None = None
    carrier_ids: dict[str, str] = field(default_factory=dict)
    # A stream's own direction (a custom parameter): the agent's leg of a call recorded with one
    # stream per leg says "outbound", so that its inbound track is the agent (speakers.py).
    direction: str | None = None


@dataclass(frozen=True)
class Media:
    """``timestamp_ms``: the carrier's time of the chunk within its stream (None when it sends
    none: the chunk follows the track's previous one). ``payload``: the bytes as sent."""

    track: str
    payload: bytes
    timestamp_ms: int | None = None
    media_format: MediaFormat | None = None  # a per-message format (Kallglot's older ``audio``)


@dataclass(frozen=True)
class Dtmf:
    digit: str


@dataclass(frozen=True)
class Mark:
    name: str


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class Ignored:
    event: str


Event = Connected | Start | Media | Dtmf | Mark | Stop | Ignored
