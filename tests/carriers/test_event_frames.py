"""The frames Twilio, Telnyx and Plivo share, read once for all three."""

from __future__ import annotations

import base64

import pytest

from kallrec.carriers import plivo, telnyx, twilio
from kallrec.carriers.event_frames import common_frame
from kallrec.carriers.events import Dtmf, Ignored, Malformed, Mark, Media, Stop

PAYLOAD = base64.b64encode(b"\xff" * 160).decode()


@pytest.mark.parametrize("dialect", [twilio, telnyx, plivo])
def test_each_dialect_reads_media_dtmf_mark_and_stop_alike(dialect) -> None:  # type: ignore[no-untyped-def]
    media = dialect.parse(
        {"event": "media", "media": {"track": "outbound", "payload": PAYLOAD, "timestamp": "40"}}
    )
    assert media == Media("outbound", b"\xff" * 160, 40)
    assert dialect.parse({"event": "dtmf", "dtmf": {"digit": "5"}}) == Dtmf("5")
    assert dialect.parse({"event": "mark", "mark": {"name": "m1"}}) == Mark("m1")
    assert dialect.parse({"event": "stop"}) == Stop()


def test_a_media_frame_without_a_track_is_the_inbound_one() -> None:
    frame = common_frame({"event": "media", "media": {"payload": PAYLOAD}})
    assert isinstance(frame, Media) and frame.track == "inbound"


def test_an_unknown_event_is_ignored_and_a_missing_one_is_malformed() -> None:
    assert common_frame({"event": "x" * 100}) == Ignored("x" * 40)
    with pytest.raises(Malformed):
        common_frame({"media": {}})
