"""The segment object's format: what a flush writes is what finalizing reads."""

from __future__ import annotations

import pytest

from kallrec.live.segments import Extent, SegmentFormatError, SegmentHeader, parse


def test_a_segment_round_trips_its_header_and_each_extent_s_samples() -> None:
    header = SegmentHeader(
        "sess_1",
        ("agent", "customer"),
        8_000,
        24_000,
        (Extent("agent", 8_000, 3), Extent("customer", 16_000, 2)),
    )
    blob = header.to_bytes() + b"aabbcc" + b"xxyy"
    parsed, extents = parse(blob)
    assert parsed == header
    assert [(e.speaker, bytes(pcm)) for e, pcm in extents] == [
        ("agent", b"aabbcc"),
        ("customer", b"xxyy"),
    ]


def test_a_segment_with_only_a_span_carries_no_samples() -> None:
    header = SegmentHeader("sess_1", ("agent",), 0, 800, ())  # a muted speaker
    parsed, extents = parse(header.to_bytes())
    assert parsed.span_end == 800 and list(extents) == []


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not a segment at all",
        SegmentHeader("s", ("agent",), 0, 3, (Extent("agent", 0, 3),)).to_bytes() + b"short",
        SegmentHeader("s", (), 0, 0, ()).to_bytes()[:-3] + b"}}}",
    ],
)
def test_anything_else_is_refused_not_misread(blob: bytes) -> None:
    with pytest.raises(SegmentFormatError):
        _header, extents = parse(blob)
        list(extents)
