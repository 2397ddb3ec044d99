"""Kallglot's older ``audio`` message, parsed."""

from __future__ import annotations

import pytest

from kallrec.carriers import kallglot_audio
from kallrec.carriers.events import ALAW, L16, PCM8, Malformed, Media


def test_mono_pcm16_is_the_customer_unless_it_names_the_agent() -> None:
    fmt, chunks = kallglot_audio.parse(
        {"type": "audio", "data": "AAA=", "encoding": "pcm_16", "sample_rate": 16000, "channels": 1}
    )
    assert (fmt.encoding, fmt.rate, fmt.channels) == (L16, 16000, 1)
    assert chunks == [Media("customer", b"\x00\x00")]
    _, chunks = kallglot_audio.parse({"type": "audio", "data": "AA==", "speaker": "agent"})
    assert chunks[0].track == "agent"


@pytest.mark.parametrize(("name", "expected"), [("pcm_8", PCM8), ("alaw", ALAW)])
def test_encodings(name: str, expected: str) -> None:
    fmt, _ = kallglot_audio.parse(
        {"type": "audio", "data": "AA==", "encoding": name, "sample_rate": 8000}
    )
    assert fmt.encoding == expected


@pytest.mark.parametrize(
    "bad",
    [
        {"encoding": "opus"},
        {"sample_rate": 96000},
        {"channels": 3},
        {"data": "%%%"},
        {"speaker": "bot"},
        {"timestamp_ms": -1},
    ],
)
def test_refused(bad: dict[str, object]) -> None:
    with pytest.raises(Malformed):
        kallglot_audio.parse({"type": "audio", "data": "AA==", **bad})
