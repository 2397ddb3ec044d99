"""Twilio Media Streams (and SignalWire's, which speaks the same protocol).

Source: https://www.twilio.com/docs/voice/media-streams/websocket-messages (shapes copied into
docs/carriers.md). Frames are JSON text with an ``event``:

- ``connected`` ``{protocol, version}``: first; nothing to act on.
- ``start`` ``{sequenceNumber, streamSid, start: {streamSid, accountSid, callSid, tracks,
  customParameters, mediaFormat: {encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1}}}``.
  The Stream URL takes no query string, so the stream token travels as a ``<Parameter
  name="token">``: ``start.customParameters.token``.
- ``media`` ``{sequenceNumber, streamSid, media: {track: "inbound"|"outbound", chunk,
  timestamp (ms from the stream's start, a string), payload (base64 μ-law)}}``.
- ``dtmf`` ``{streamSid, sequenceNumber, dtmf: {track, digit}}``, ``mark`` ``{mark: {name}}``,
  ``stop`` ``{stop: {accountSid, callSid}}``.
"""

from __future__ import annotations

from typing import Any

from kallrec.carriers import fields, formats
from kallrec.carriers.event_frames import common_frame
from kallrec.carriers.events import (
    Connected,
    Event,
    Start,
)


def parse(data: dict[str, Any]) -> Event:
    event = data.get("event")
    if event == "start":
        return _start(data)
    if event == "connected":
        return Connected()
    return common_frame(data)


def _start(data: dict[str, Any]) -> Start:
    start = fields.obj(data, "start")
    params = fields.str_params(start.get("customParameters"))
    fmt = fields.optional_obj(start, "mediaFormat")
    media_format = formats.media_format(
        fmt.get("encoding", "audio/x-mulaw"), fmt.get("sampleRate"), fmt.get("channels", 1)
    )
    tracks = start.get("tracks")
    stream_sid = fields.text(start, "streamSid") or fields.text(data, "streamSid")
    return Start(
        media_format=media_format,
        tracks=tuple(t for t in tracks if isinstance(t, str)) if isinstance(tracks, list) else (),
        stream_id=stream_sid,
        token=params.get("token"),
        session_id=formats.own_session_id(params.get("session_id")),
        direction=formats.direction(params),
        carrier_ids=fields.ids(
            {
                "call_sid": start.get("callSid"),
                "stream_sid": stream_sid,
                "account_sid": start.get("accountSid"),
            }
        ),
    )
