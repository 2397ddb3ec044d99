"""Plivo audio streams (the ``<Stream>`` XML element and the Audio Stream API).

Sources: https://www.plivo.com/docs/voice/xml/audiostream and
https://plivo.com/docs/voice/audio-streaming/audio-streaming (shapes in docs/carriers.md):

- ``start`` ``{sequenceNumber, start: {callId, streamId, accountId, tracks: ["inbound", ...],
  mediaFormat: {encoding: "audio/x-mulaw"|"audio/x-l16", sampleRate: 8000|16000}},
  extra_headers: "k=v;k2=v2"}``: first frame (no ``connected`` before it).
- ``media`` ``{sequenceNumber, streamId, media: {track, timestamp (epoch ms, a string), chunk,
  payload}, extra_headers}``; 16-bit linear PCM is little-endian.
- ``dtmf`` ``{dtmf: {digit}}``; ``playedStream``, ``clearedAudio`` (bidirectional acks);
  ``stop`` when it is sent (a close without it is the usual end).

``extraHeaders`` allow only letters and digits, so the stream token (``kst_…``) goes in the
stream URL's query (``?token=``); a ``token`` extra header is read too.
"""

from __future__ import annotations

from typing import Any

from kallrec.carriers import fields, formats
from kallrec.carriers.event_frames import common_frame
from kallrec.carriers.events import Event, Start


def parse(data: dict[str, Any]) -> Event:
    event = data.get("event")
    if event == "start":
        return _start(data)
    return common_frame(data)


def extra_headers(value: Any) -> dict[str, str]:
    """``"a=1,b=2"`` (the XML reference) or ``"a=1;b=2"`` (the streaming reference)."""
    if not isinstance(value, str):
        return {}
    found = {}
    for pair in value.replace(";", ",").split(","):
        key, sep, val = pair.partition("=")
        if sep and key.strip():
            found[key.strip()] = val.strip()
    return found


def _start(data: dict[str, Any]) -> Start:
    start = fields.obj(data, "start")
    fmt = fields.optional_obj(start, "mediaFormat")
    media_format = formats.media_format(fmt.get("encoding", "audio/x-mulaw"), fmt.get("sampleRate"))
    headers = extra_headers(data.get("extra_headers"))
    tracks = start.get("tracks")
    stream_id = fields.text(start, "streamId") or fields.text(data, "streamId")
    return Start(
        media_format=media_format,
        tracks=tuple(t for t in tracks if isinstance(t, str)) if isinstance(tracks, list) else (),
        stream_id=stream_id,
        token=headers.get("token"),
        session_id=formats.own_session_id(headers.get("session_id")),
        direction=formats.direction(headers),
        carrier_ids=fields.ids({"call_id": start.get("callId"), "stream_id": stream_id}),
    )
