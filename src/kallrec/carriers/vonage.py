"""Vonage Voice API WebSockets (an NCCO ``connect`` action with a ``websocket`` endpoint).

Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets and the NCCO
reference (shapes in docs/carriers.md). The first frame is text: ``{"event":
"websocket:connected", "content-type": "audio/l16;rate=16000", ...}`` with the endpoint's
custom ``headers`` as top-level keys (``token``, ``session_id`` here). Every frame after it is
binary: 16-bit signed little-endian linear PCM at 8 or 16 kHz, 20 ms each (320 or 640 bytes),
mono, and the audio of the whole conversation the socket joined (a single, mixed track). Later
text frames (``websocket:cleared``, ``websocket:notify``, DTMF ``websocket:dtmf``) carry no audio.
"""

from __future__ import annotations

from typing import Any

from kallrec.carriers import fields, formats
from kallrec.carriers.events import (
    Dtmf,
    Event,
    Ignored,
    Malformed,
    Media,
    MediaFormat,
    Start,
)

MIXED = "mixed"
CONNECTED = "websocket:connected"
# Ids a Vonage answer webhook knows (uuid, conversation_uuid) that an NCCO may pass as headers.
ID_HEADERS = ("uuid", "conversation_uuid", "call_uuid")


def parse_text(data: dict[str, Any]) -> Event:
    event = data.get("event")
    if event == CONNECTED:
        return _start(data)
    if event == "websocket:dtmf":
        digit = data.get("digit")
        if digit is None:
            digit = fields.optional_obj(data, "dtmf").get("digit", "")
        return Dtmf(str(digit)[:8])
    if not isinstance(event, str):
        raise Malformed("'event' is missing")
    return Ignored(event[:40])


def parse_binary(frame: bytes) -> Media:
    return Media(MIXED, frame)


def _start(data: dict[str, Any]) -> Start:
    fmt = formats.content_type(data.get("content-type", "audio/l16;rate=16000"))
    headers = {k: v for k, v in data.items() if isinstance(v, str)}
    ids = {name: headers[name] for name in ID_HEADERS if name in headers}
    return Start(
        media_format=MediaFormat(fmt.encoding, fmt.rate),
        tracks=(MIXED,),
        token=headers.get("token"),
        session_id=formats.own_session_id(headers.get("session_id")),
        direction=formats.direction(headers),
        carrier_ids=fields.ids(ids),
    )
