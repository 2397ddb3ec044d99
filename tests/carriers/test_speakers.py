"""Carrier tracks → speakers, by the call's direction."""

from __future__ import annotations

import pytest

from kallrec.carriers.speakers import speaker_for


@pytest.mark.parametrize(
    ("track", "direction", "speaker"),
    [
        ("inbound", None, "customer"),
        ("outbound", None, "agent"),
        ("inbound", "inbound", "customer"),
        ("inbound", "outbound", "agent"),
        ("outbound", "outbound", "customer"),
        ("inbound_track", None, "customer"),
        ("mixed", None, "customer"),
        ("agent", "outbound", "agent"),
    ],
)
def test_mapping(track: str, direction: str | None, speaker: str) -> None:
    assert speaker_for(track, direction) == speaker
