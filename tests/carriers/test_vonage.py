"""Vonage Voice WebSocket frames, as its documentation shows them, parsed."""

from __future__ import annotations

import pytest

from kallrec.carriers import dialects, vonage
from kallrec.carriers.events import L16, Ignored, Malformed, Media, Start


def test_the_first_frame_carries_format_and_the_ncco_headers() -> None:
    frame = {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        "token": "kst_test_v",
        "session_id": "sess_9",
        "uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356",
    }
    start = vonage.parse_text(frame)
    assert isinstance(start, Start)
    assert (start.media_format.encoding, start.media_format.rate) == (L16, 16000)
    assert (start.token, start.session_id) == ("kst_test_v", "sess_9")
    assert start.tracks == ("mixed",)
    assert start.carrier_ids == {"uuid": "63f61863-4a51-4f6b-86e1-46edebcf9356"}
    assert dialects.detect(frame) == dialects.VONAGE


def test_binary_frames_are_the_mixed_track_and_other_events_are_ignored() -> None:
    assert vonage.parse_binary(b"\x00" * 640) == Media("mixed", b"\x00" * 640)
    assert vonage.parse_text({"event": "websocket:notify", "payload": {}}) == Ignored(
        "websocket:notify"
    )


def test_an_unsupported_content_type_is_malformed() -> None:
    with pytest.raises(Malformed):
        vonage.parse_text({"event": "websocket:connected", "content-type": "audio/opus"})
