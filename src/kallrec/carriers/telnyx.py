"""Telnyx media streaming: TeXML ``<Stream>`` and Call Control ``streaming_start``.

Sources: https://developers.telnyx.com/docs/voice/programmable-voice/texml-verbs/stream,
https://developers.telnyx.com/api/call-control/start-call-streaming and the AsyncAPI page
https://developers.telnyx.com/api-reference/websockets/stream-call-media-over-websocket
(shapes in docs/carriers.md). Like Twilio's, with snake_case names:

- ``connected`` ``{version}`` (with ``x-telnyx-streaming-auth-token`` when configured).
- ``start`` ``{sequence_number, stream_id, start: {user_id, call_control_id, call_session_id,
  from, to, client_state, custom_parameters, media_format: {encoding, sample_rate, channels}}}``;
  ``encoding`` is ``PCMU``/``PCMA``/``L16``/... (older pages: ``audio/x-mulaw``). TeXML passes
  ``<Parameter>``s in ``custom_parameters`` (Kallglot's guide: ``token`` and ``session_id``).
- ``media`` ``{sequence_number, stream_id, media: {track, chunk, timestamp, payload}}``: the
  payload is the RTP payload without its header, base64; frame order is not guaranteed.
- ``dtmf`` ``{dtmf: {digit}}``, ``mark`` ``{mark: {name}}``, ``error``, ``stop``.
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
        return Connected(fields.text(data, "x-telnyx-streaming-auth-token"))
    return common_frame(data)


def _start(data: dict[str, Any]) -> Start:
    start = fields.obj(data, "start")
    params = fields.str_params(start.get("custom_parameters"))
    fmt = fields.optional_obj(start, "media_format")
    media_format = formats.media_format(
        fmt.get("encoding", "PCMU"),
        fmt.get("sample_rate"),
        fmt.get("channels", 1),
        big_endian_l16=True,
    )
    stream_id = fields.text(data, "stream_id") or fields.text(start, "stream_id")
    tracks = start.get("tracks")
    return Start(
        media_format=media_format,
        # Telnyx names no tracks in start; both are possible (track="both_tracks").
        tracks=tuple(t for t in tracks if isinstance(t, str)) if isinstance(tracks, list) else (),
        stream_id=stream_id,
        token=params.get("token"),
        session_id=formats.own_session_id(params.get("session_id")),
        direction=formats.direction(params),
        carrier_ids=fields.ids(
            {
                "call_control_id": start.get("call_control_id"),
                "call_session_id": start.get("call_session_id"),
                "stream_id": stream_id,
            }
        ),
    )
