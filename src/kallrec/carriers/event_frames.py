"""The frames Twilio, Telnyx and Plivo spell alike.

Telnyx and Plivo modelled their media streams on Twilio's: ``{"event": "media", "media":
{"track", "payload", "timestamp"}}``, ``dtmf``, ``mark`` and ``stop`` have one shape in all three.
Each dialect reads its own ``start`` (and ``connected``) and hands the rest here.
"""

from __future__ import annotations

from typing import Any

from kallrec.carriers import fields
from kallrec.carriers.events import Dtmf, Event, Ignored, Malformed, Mark, Media, Stop


def common_frame(data: dict[str, Any]) -> Event:
    """``media``, ``dtmf``, ``mark``, ``stop``; any other named event is ignored."""
    event = data.get("event")
    if event == "media":
        media = fields.obj(data, "media")
        track = fields.text(media, "track") or "inbound"
        return Media(track, fields.payload(media), fields.integer(media.get("timestamp")))
    if event == "dtmf":
        return Dtmf(str(fields.optional_obj(data, "dtmf").get("digit", ""))[:8])
    if event == "mark":
        return Mark(str(fields.optional_obj(data, "mark").get("name", ""))[:255])
    if event == "stop":
        return Stop()
    if not isinstance(event, str):
        raise Malformed("'event' is missing")
    return Ignored(event[:40])
