"""The segment object: what one process flushed of one session's audio in one round.

One object holds both speakers: the audio received since the previous flush, as extents (a
speaker, the client-clock sample it starts at, its 16-bit PCM), and the span the session reached
(muted audio extends the span without carrying samples, as a muted chunk extends a track).
Positions are in samples of the client's clock (timestamp_ms * 8), so segments cut by different
replicas, each with its own local timeline, line up.

    MAGIC | header length (4 bytes, big-endian) | header (JSON) | the extents' PCM, in order

Pure: no storage, no database.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"KRSEG1\n"
_LENGTH = struct.Struct(">I")
# A segment carries at most this much PCM (both speakers): after a long storage outage the
# backlog goes up in several objects, and finalizing holds one at a time.
MAX_SEGMENT_BYTES = 4 * 1024 * 1024


class SegmentFormatError(ValueError):
    """Not a segment this version can read."""


@dataclass(frozen=True)
class Extent:
    speaker: str
    start_sample: int
    samples: int


@dataclass(frozen=True)
class SegmentHeader:
    session_id: str
    speakers: tuple[str, ...]  # every speaker the span covers, muted ones too
    span_start: int  # samples, client clock
    span_end: int
    extents: tuple[Extent, ...]

    def to_bytes(self) -> bytes:
        body = json.dumps(
            {
                "session_id": self.session_id,
                "speakers": list(self.speakers),
                "span": [self.span_start, self.span_end],
                "extents": [[e.speaker, e.start_sample, e.samples] for e in self.extents],
            },
            separators=(",", ":"),
        ).encode()
        return MAGIC + _LENGTH.pack(len(body)) + body


def parse(blob: bytes) -> tuple[SegmentHeader, Iterator[tuple[Extent, memoryview]]]:
    """The header, and each extent with its PCM (views into ``blob``)."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _LENGTH.size:
        raise SegmentFormatError("not a kallrec live segment")
    at = len(MAGIC)
    (length,) = _LENGTH.unpack_from(blob, at)
    at += _LENGTH.size
    try:
        data = json.loads(blob[at : at + length])
        header = SegmentHeader(
            str(data["session_id"]),
            tuple(str(s) for s in data["speakers"]),
            int(data["span"][0]),
            int(data["span"][1]),
            tuple(Extent(str(s), int(start), int(n)) for s, start, n in data["extents"]),
        )
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise SegmentFormatError(f"unreadable segment header: {exc}") from None
    at += length
    needed = sum(e.samples * 2 for e in header.extents)
    if len(blob) - at != needed:
        raise SegmentFormatError(f"segment holds {len(blob) - at} bytes of audio, not {needed}")
    view = memoryview(blob)

    def extents() -> Iterator[tuple[Extent, memoryview]]:
        offset = at
        for extent in header.extents:
            yield extent, view[offset : offset + extent.samples * 2]
            offset += extent.samples * 2

    return header, extents()
