"""Twilio Media Streams frames, as its documentation shows them, parsed."""

from __future__ import annotations

import base64

import pytest

from kallrec.carriers import dialects, twilio
from kallrec.carriers.events import (
    MULAW,
    UNSUPPORTED,
    Connected,
    Dtmf,
    Ignored,
    Malformed,
    Mark,
    Media,
    Start,
    Stop,
)

START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "callSid": "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "tracks": ["inbound", "outbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"token": "kst_test_abc", "FirstName": "Jane"},
    },
    "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
}


def test_start_gives_the_token_tracks_format_and_ids() -> None:
    start = twilio.parse(START)
    assert isinstance(start, Start)
    assert start.token == "kst_test_abc"
    assert start.tracks == ("inbound", "outbound")
    assert start.media_format.encoding == MULAW and start.media_format.rate == 8000
    assert start.carrier_ids["call_sid"].startswith("CA")
    assert start.carrier_ids["stream_sid"].startswith("MZ")
    assert dialects.detect(START) == dialects.TWILIO


def test_media_gives_track_timestamp_and_the_mulaw_bytes() -> None:
    frame = {
        "event": "media",
        "sequenceNumber": "3",
        "media": {"track": "outbound", "chunk": "1", "timestamp": "5", "payload": "no+JhoaJjpz/"},
        "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    }
    media = twilio.parse(frame)
    assert media == Media("outbound", base64.b64decode("no+JhoaJjpz/"), 5)


def test_connected_dtmf_mark_stop_and_unknown_events() -> None:
    assert twilio.parse({"event": "connected", "protocol": "Call", "version": "1.0.0"}) == (
        Connected()
    )
    assert twilio.parse({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": "1"}}) == (
        Dtmf("1")
    )
    assert twilio.parse({"event": "mark", "mark": {"name": "my label"}}) == Mark("my label")
    assert twilio.parse({"event": "stop", "stop": {"callSid": "CA1"}}) == Stop()
    assert twilio.parse({"event": "transcription"}) == Ignored("transcription")


@pytest.mark.parametrize(
    "frame",
    [
        {"media": {}},
        {"event": "media"},
        {"event": "media", "media": {"payload": 12}},
        {"event": "media", "media": {"payload": "not base64!"}},
        {"event": "start"},
    ],
)
def test_broken_frames_are_malformed(frame: dict[str, object]) -> None:
    with pytest.raises(Malformed):
        twilio.parse(frame)


@pytest.mark.parametrize(
    "media_format", [{"encoding": "audio/x-opus"}, {"sampleRate": 1}, {"encoding": 5}]
)
def test_a_start_in_a_format_kallrec_cannot_decode_still_authenticates(
    media_format: dict[str, object],
) -> None:
    start = twilio.parse({**START, "start": {**START["start"], "mediaFormat": media_format}})  # type: ignore[dict-item]
    assert isinstance(start, Start)
    assert start.token == "kst_test_abc" and start.media_format.encoding == UNSUPPORTED


def test_a_stream_may_say_its_own_direction_and_a_foreign_session_id_is_not_ours() -> None:
    params = {"token": "kst_test_abc", "direction": "outbound", "session_id": "crm-42"}
    start = twilio.parse({**START, "start": {**START["start"], "customParameters": params}})  # type: ignore[dict-item]
    assert isinstance(start, Start)
    assert start.direction == "outbound" and start.session_id is None
