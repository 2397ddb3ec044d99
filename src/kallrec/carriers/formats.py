"""The carriers' names for their media formats, normalised (events.MULAW, ALAW, L16...).

Twilio says ``audio/x-mulaw``; Telnyx ``PCMU``/``PCMA``/``L16`` (its older pages
``audio/x-mulaw``); Plivo ``audio/x-mulaw`` or ``audio/x-l16``; Vonage a content type
``audio/l16;rate=16000``. Byte order of 16-bit linear PCM: Vonage and Plivo document
little-endian samples; Telnyx sends "RTP payloads without headers", and RTP's L16 is big-endian
(RFC 3551 §4.5.11), so ``big_endian_l16`` is set for Telnyx.
"""

from __future__ import annotations

from typing import Any

from kallrec.carriers import fields
from kallrec.carriers.events import (
    ALAW,
    L16,
    L16_BIG,
    MAX_RATE,
    MIN_RATE,
    MULAW,
    UNSUPPORTED,
    Malformed,
    MediaFormat,
)

_NAMES = {
    "audio/x-mulaw": MULAW,
    "audio/mulaw": MULAW,
    "audio/pcmu": MULAW,
    "pcmu": MULAW,
    "mulaw": MULAW,
    "ulaw": MULAW,
    "audio/x-alaw": ALAW,
    "audio/alaw": ALAW,
    "audio/pcma": ALAW,
    "pcma": ALAW,
    "alaw": ALAW,
    "audio/x-l16": L16,
    "audio/l16": L16,
    "l16": L16,
    "linear16": L16,
}


def encoding(name: Any, *, big_endian_l16: bool = False) -> str:
    if not isinstance(name, str):
        raise Malformed("the media format's encoding is not a string")
    found = _NAMES.get(name.split(";")[0].strip().lower())
    if found is None:
        raise Malformed(f"unsupported encoding {name[:40]!r}")
    return L16_BIG if found == L16 and big_endian_l16 else found


def rate(value: Any, default: int = 8000) -> int:
    if value is None:
        return default
    found = fields.integer(value)
    if found is None or not MIN_RATE <= found <= MAX_RATE:
        raise Malformed(f"unsupported sample rate {value!r}")
    return found


def content_type(value: Any, *, big_endian_l16: bool = False) -> MediaFormat:
    """``audio/l16;rate=16000`` (Vonage, Plivo's ``contentType``) → a MediaFormat."""
    if not isinstance(value, str):
        raise Malformed("the content type is not a string")
    name, *params = value.split(";")
    found_rate: Any = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "rate":
            found_rate = val.strip()
    return MediaFormat(encoding(name, big_endian_l16=big_endian_l16), rate(found_rate))


def media_format(
    encoding_name: Any, rate_value: Any, channels: Any = 1, *, big_endian_l16: bool = False
) -> MediaFormat:
    """A ``start`` frame's format; one kallrec cannot decode is UNSUPPORTED (not an error: the
    stream is still admitted, its ids kept, and its media skipped)."""
    try:
        count = fields.integer(channels) or 1
        return MediaFormat(
            encoding(encoding_name, big_endian_l16=big_endian_l16), rate(rate_value), count
        )
    except Malformed:
        return MediaFormat(UNSUPPORTED)


def direction(params: dict[str, str]) -> str | None:
    found = params.get("direction")
    return found if found in ("inbound", "outbound") else None


def own_session_id(value: str | None) -> str | None:
    """A ``session_id`` parameter, when it is a kallrec session id (others are the user's)."""
    return value if value and value.startswith("sess_") else None
