"""MPEG audio (MP3) stream structure: ID3v2 tags, frame headers, and a walk over the frames.

libsndfile (mpg123) decodes MP3 but stops quietly at the first stretch of garbage it cannot
resynchronise past, and its length estimate is only size / first-frame bitrate when a VBR file
has no Xing header. Walking the frame headers ourselves gives the true amount of audio a file
holds, so a decode that returns much less can be reported as corrupt instead of silently
shortening the call.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["FrameHeader", "StreamSummary", "id3v2_size", "parse_frame_header", "walk_frames"]

_MPEG1, _MPEG2, _MPEG25 = 3, 2, 0  # the header's version bits
_LAYER1, _LAYER2, _LAYER3 = 3, 2, 1  # the header's layer bits

_BITRATES_KBPS = {
    (_MPEG1, _LAYER1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (_MPEG1, _LAYER2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (_MPEG1, _LAYER3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (_MPEG2, _LAYER1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (_MPEG2, _LAYER2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES_KBPS[(_MPEG2, _LAYER3)] = _BITRATES_KBPS[(_MPEG2, _LAYER2)]
for _layer in (_LAYER1, _LAYER2, _LAYER3):
    _BITRATES_KBPS[(_MPEG25, _layer)] = _BITRATES_KBPS[(_MPEG2, _layer)]

_SAMPLE_RATES = {
    _MPEG1: (44100, 48000, 32000),
    _MPEG2: (22050, 24000, 16000),
    _MPEG25: (11025, 12000, 8000),
}


@dataclass(frozen=True)
class FrameHeader:
    version: str  # "1", "2" or "2.5"
    layer: int  # 1, 2 or 3
    bitrate_kbps: int
    sample_rate: int
    channels: int
    samples: int  # per frame
    length: int  # bytes, header included


def parse_frame_header(b: bytes) -> FrameHeader | None:
    """Decode a 4-byte MPEG audio frame header, or None if these bytes are not one."""
    if len(b) < 4 or b[0] != 0xFF or b[1] & 0xE0 != 0xE0:
        return None
    version, layer = (b[1] >> 3) & 3, (b[1] >> 1) & 3
    bitrate_index, rate_index, padding = b[2] >> 4, (b[2] >> 2) & 3, (b[2] >> 1) & 1
    # Reserved values; free-format (bitrate index 0) is legal but unused in practice.
    if version == 1 or layer == 0 or not 0 < bitrate_index < 15 or rate_index == 3:
        return None
    if b[3] & 3 == 2:  # reserved emphasis
        return None
    bitrate = _BITRATES_KBPS[(version, layer)][bitrate_index]
    rate = _SAMPLE_RATES[version][rate_index]
    if layer == _LAYER1:
        samples, length = 384, (12_000 * bitrate // rate + padding) * 4
    else:
        samples = 576 if layer == _LAYER3 and version != _MPEG1 else 1152
        length = samples // 8 * 1000 * bitrate // rate + padding
    return FrameHeader(
        version={_MPEG1: "1", _MPEG2: "2", _MPEG25: "2.5"}[version],
        layer=4 - layer,
        bitrate_kbps=bitrate,
        sample_rate=rate,
        channels=1 if b[3] >> 6 == 3 else 2,
        samples=samples,
        length=length,
    )


def id3v2_size(head: bytes) -> int | None:
    """Total size of an ID3v2 tag at the start of ``head`` (10+ bytes), or None if there is none."""
    if len(head) < 10 or head[:3] != b"ID3" or head[3] == 0xFF or head[4] == 0xFF:
        return None
    if any(b & 0x80 for b in head[6:10]):
        return None
    size = 0
    for b in head[6:10]:  # "syncsafe" integer: 7 bits per byte
        size = (size << 7) | b
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


@dataclass(frozen=True)
class StreamSummary:
    frames: int
    samples: int  # per channel, at the stream's own rate
    junk_bytes: int  # bytes between frames that are not part of any frame


def walk_frames(f: BinaryIO, start: int) -> StreamSummary:
    """Follow the chain of frame headers from ``start``, resynchronising across garbage.

    A candidate found while resynchronising counts only if the next header follows it where its
    length says, so sync-like bytes in garbage are not mistaken for audio.
    """
    f.seek(0, 2)
    if f.tell() <= start:
        return StreamSummary(0, 0, 0)
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        end = len(mm)
        if end - start >= 128 and mm[end - 128 : end - 125] == b"TAG":
            end -= 128  # ID3v1 tag
        frames = samples = junk = 0
        pos, synced = start, True
        while pos + 4 <= end:
            header = parse_frame_header(mm[pos : pos + 4])
            if header is not None and (synced or _chains(mm, pos, header, end)):
                if pos + header.length > end:
                    break  # a last frame cut short: no whole frame's worth of audio
                frames += 1
                samples += header.samples
                pos += header.length
                synced = True
                continue
            synced = False
            following = mm.find(b"\xff", pos + 1, end)
            next_pos = end if following < 0 else following
            junk += next_pos - pos
            pos = next_pos
        junk += max(0, end - pos)
    return StreamSummary(frames, samples, junk)


def _chains(mm: mmap.mmap, pos: int, header: FrameHeader, end: int) -> bool:
    nxt = pos + header.length
    if nxt + 4 > end:
        return nxt <= end
    return parse_frame_header(mm[nxt : nxt + 4]) is not None
