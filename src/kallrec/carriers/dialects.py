"""Which dialect a stream speaks, from its frames, and the parser of each.

Kallglot's guides point the carrier at the session's own stream URL
(``/v1/sessions/{id}/connect``), so one endpoint hears every dialect: the frames say which.
Twilio and SignalWire say ``streamSid``, Telnyx ``stream_id`` (snake_case throughout), Plivo
``streamId``/``callId``, Vonage opens with ``websocket:connected``. A ``connected`` frame alone
names no carrier for sure (Twilio's has a ``protocol``, Telnyx's not), so it is read without
deciding, and the ``start`` after it decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kallrec.carriers import plivo, telnyx, twilio, vonage
from kallrec.carriers.events import Event

TWILIO = "twilio"
SIGNALWIRE = "signalwire"
TELNYX = "telnyx"
PLIVO = "plivo"
VONAGE = "vonage"
DIALECTS = (TWILIO, SIGNALWIRE, TELNYX, PLIVO, VONAGE)

PARSERS: dict[str, Callable[[dict[str, Any]], Event]] = {
    TWILIO: twilio.parse,
    SIGNALWIRE: twilio.parse,
    TELNYX: telnyx.parse,
    PLIVO: plivo.parse,
    VONAGE: vonage.parse_text,
}


def is_carrier_frame(data: dict[str, Any]) -> bool:
    """A JSON frame of some carrier (``event``), not of Kallglot's own protocol (``type``)."""
    return isinstance(data.get("event"), str) and "type" not in data


def detect(data: dict[str, Any]) -> str | None:
    """The dialect a frame shows, or None when it does not tell (a bare ``connected``)."""
    event = data.get("event")
    if not isinstance(event, str):
        return None
    if event.startswith("websocket:"):
        return VONAGE
    inner = data.get(event)
    keys = set(data) | (set(inner) if isinstance(inner, dict) else set())
    if "streamSid" in keys or "callSid" in keys or "accountSid" in keys:
        return TWILIO
    if "stream_id" in keys or "call_control_id" in keys or "sequence_number" in keys:
        return TELNYX
    if "streamId" in keys or "callId" in keys or "extra_headers" in keys:
        return PLIVO
    if event == "start" and "mediaFormat" in keys:
        return TWILIO
    if event == "start" and "media_format" in keys:
        return TELNYX
    return None


def named(dialect: str, provider: str | None) -> str:
    """SignalWire speaks Twilio's protocol: a session routed through it keeps its own name."""
    if dialect == TWILIO and provider == SIGNALWIRE:
        return SIGNALWIRE
    return dialect
