"""Kallglot's older ``audio`` message (the first version of its WebSocket guide).

Source: https://developer.kallglot.com/api-reference/streaming/websocket (the version that
authenticates with ``Authorization: Bearer``; shape in docs/carriers.md)::

    {"type": "audio", "data": "<base64>", "encoding": "pcm_16", "sample_rate": 16000,
     "channels": 1}

``encoding``: ``pcm_16`` (signed 16-bit little-endian), ``pcm_8`` (unsigned 8-bit), ``mulaw``,
``alaw``; ``sample_rate`` 8,000 to 48,000 Hz; ``channels`` 1 or 2. The message names no speaker
and no time: kallrec places each chunk right after the previous one of its track. Mono audio is
the ``customer`` track unless the message says ``"speaker": "agent"`` (a kallrec extension, as
is ``timestamp_ms``); stereo is split, left the agent and right the customer, as imports are.
"""

from __future__ import annotations

from typing import Any

from kallrec.carriers import fields, formats
from kallrec.carriers.events import ALAW, L16, MULAW, PCM8, Malformed, Media, MediaFormat

ENCODINGS = {"pcm_16": L16, "pcm16": L16, "pcm_8": PCM8, "mulaw": MULAW, "alaw": ALAW}
SPEAKERS = ("agent", "customer")
STEREO = ("agent", "customer")  # left, right
MAX_TIMESTAMP_MS = 2**53


def parse(data: dict[str, Any]) -> tuple[MediaFormat, list[Media]]:
    """The message's format and one Media per speaker (still encoded as sent)."""
    encoding = ENCODINGS.get(str(data.get("encoding", "pcm_16")))
    if encoding is None:
        raise Malformed("'encoding' must be one of " + ", ".join(ENCODINGS))
    rate = formats.rate(data.get("sample_rate"), default=16000)
    channels = data.get("channels", 1)
    if channels not in (1, 2) or isinstance(channels, bool):
        raise Malformed("'channels' must be 1 or 2")
    timestamp = data.get("timestamp_ms")
    if timestamp is not None:
        timestamp = fields.integer(timestamp)
        if timestamp is None or not 0 <= timestamp <= MAX_TIMESTAMP_MS:
            raise Malformed("'timestamp_ms' must be a non-negative integer")
    payload = fields.payload(data, "data")
    fmt = MediaFormat(encoding, rate, channels)
    if channels == 2:
        return fmt, [Media("stereo", payload, timestamp)]
    speaker = data.get("speaker", "customer")
    if speaker not in SPEAKERS:
        raise Malformed("'speaker' must be 'agent' or 'customer'")
    return fmt, [Media(str(speaker), payload, timestamp)]
