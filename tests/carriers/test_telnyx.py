"""Telnyx media-streaming frames, as its documentation shows them, parsed."""

from __future__ import annotations

import pytest

from kallrec.carriers import dialects, telnyx
from kallrec.carriers.events import ALAW, L16_BIG, MULAW, Connected, Dtmf, Media, Start, Stop

START = {
    "event": "start",
    "sequence_number": "1",
    "stream_id": "32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
    "start": {
        "user_id": "3E6F995F-85F7-4705-9741-53B116D28237",
        "call_control_id": "v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
        "call_session_id": "ff55a038-6f5d-11ef-9692-02420aeffb1f",
        "from": "+13122010094",
        "to": "+13122123456",
        "tags": ["TAG1", "TAG2"],
        "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
        "custom_parameters": {"token": "kst_test_x", "session_id": "sess_1"},
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1},
    },
}


def test_start_gives_token_session_id_format_and_ids() -> None:
    start = telnyx.parse(START)
    assert isinstance(start, Start)
    assert (start.token, start.session_id) == ("kst_test_x", "sess_1")
    assert start.media_format.encoding == MULAW
    assert start.carrier_ids["call_control_id"].startswith("v2:")
    assert start.carrier_ids["stream_id"] == "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
    assert dialects.detect(START) == dialects.TELNYX


@pytest.mark.parametrize(
    ("encoding", "rate", "expected"),
    [("PCMA", 8000, ALAW), ("L16", 16000, L16_BIG), ("audio/x-mulaw", 8000, MULAW)],
)
def test_media_formats(encoding: str, rate: int, expected: str) -> None:
    frame = {
        **START,
        "start": {
            **START["start"],
            "media_format": {
                "encoding": encoding,  # type: ignore[dict-item]
                "sample_rate": rate,
            },
        },
    }
    start = telnyx.parse(frame)
    assert isinstance(start, Start)
    assert (start.media_format.encoding, start.media_format.rate) == (expected, rate)


def test_media_dtmf_stop_and_connected() -> None:
    media = telnyx.parse(
        {
            "event": "media",
            "sequence_number": "4",
            "media": {"track": "inbound", "chunk": "2", "timestamp": "5", "payload": "AAE="},
            "stream_id": "32de0dea",
        }
    )
    assert media == Media("inbound", b"\x00\x01", 5)
    assert telnyx.parse({"event": "dtmf", "dtmf": {"digit": "#"}}) == Dtmf("#")
    assert telnyx.parse({"event": "stop", "stop": {}}) == Stop()
    assert telnyx.parse(
        {"event": "connected", "version": "1.0.0", "x-telnyx-streaming-auth-token": "kst_t"}
    ) == Connected("kst_t")
    assert dialects.detect({"event": "connected", "version": "1.0.0"}) is None
