"""Which dialect a frame shows; Kallglot's own messages are no carrier's."""

from __future__ import annotations

from kallrec.carriers import dialects


def test_detection() -> None:
    assert dialects.detect({"event": "media", "streamSid": "MZ1", "media": {}}) == "twilio"
    assert dialects.detect({"event": "media", "stream_id": "x", "media": {}}) == "telnyx"
    assert dialects.detect({"event": "media", "streamId": "x", "media": {}}) == "plivo"
    assert dialects.detect({"event": "websocket:connected"}) == "vonage"
    assert dialects.detect({"event": "connected", "protocol": "Call"}) is None
    assert dialects.named("twilio", "signalwire") == "signalwire"
    assert dialects.named("twilio", None) == "twilio"


def test_kallglot_messages_are_not_carrier_frames() -> None:
    assert not dialects.is_carrier_frame({"type": "audio.input"})
    assert not dialects.is_carrier_frame({"type": "audio", "event": "x"})
    assert dialects.is_carrier_frame({"event": "start"})
