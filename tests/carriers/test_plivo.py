"""Plivo audio-stream frames, as its documentation shows them, parsed."""

from __future__ import annotations

from kallrec.carriers import dialects, plivo
from kallrec.carriers.events import L16, Dtmf, Ignored, Media, Start

START = {
    "event": "start",
    "sequenceNumber": 1,
    "start": {
        "callId": "12345678-1234-1234-1234-123456789abc",
        "streamId": "87654321-4321-4321-4321-cba987654321",
        "accountId": "MAXXXXXXXXXXXXXXXXXX",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-l16", "sampleRate": 16000},
    },
    "extra_headers": "userId=12345;sessionId=abc-xyz",
}


def test_start_gives_format_tracks_ids_and_extra_headers() -> None:
    start = plivo.parse(START)
    assert isinstance(start, Start)
    assert (start.media_format.encoding, start.media_format.rate) == (L16, 16000)
    assert start.tracks == ("inbound",)
    assert start.carrier_ids == {
        "call_id": "12345678-1234-1234-1234-123456789abc",
        "stream_id": "87654321-4321-4321-4321-cba987654321",
    }
    # sessionId here is the user's own header (Plivo's example), not a kallrec session id
    assert start.session_id is None and start.token is None
    assert dialects.detect(START) == dialects.PLIVO


def test_extra_headers_in_either_documented_separator() -> None:
    assert plivo.extra_headers("test1=12,test2=123") == {"test1": "12", "test2": "123"}
    assert plivo.extra_headers("a=1;token=kst_x") == {"a": "1", "token": "kst_x"}
    assert plivo.extra_headers(None) == {}


def test_media_with_an_epoch_timestamp_and_a_numeric_chunk() -> None:
    media = plivo.parse(
        {
            "event": "media",
            "sequenceNumber": 42,
            "streamId": "87654321",
            "media": {
                "track": "inbound",
                "timestamp": "1705312200000",
                "chunk": 41,
                "payload": "AAA=",
            },
            "extra_headers": "userId=12345",
        }
    )
    assert media == Media("inbound", b"\x00\x00", 1705312200000)
    assert plivo.parse({"event": "dtmf", "dtmf": {"track": "inbound", "digit": "5"}}) == Dtmf("5")
    assert plivo.parse({"event": "playedStream", "name": "x"}) == Ignored("playedStream")
