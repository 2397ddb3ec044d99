"""A session's tracks rebuilt from its segments in storage, on whichever replica finalizes it.

Segments are fetched a few at a time (``PREFETCH``; each a byte range of a packed object, about
one flush interval of one call's audio, at most MAX_SEGMENT_BYTES) and written, in the order
they were cut, at their place in one local file per speaker: the later segment wins where two
overlap (two sockets on two replicas for the same speaker at once: the last writer per time
range). Memory stays that of a few segments whatever the length of the call; the files are the
same sparse tracks finalizing always read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anyio

from kallrec.db.live_repository import SegmentRow
from kallrec.live.segments import parse
from kallrec.live.timeline import MAX_SPAN_MS
from kallrec.live.tracks import FinishedTracks
from kallrec.storage import ObjectMissing, Storage

log = logging.getLogger("kallrec.live")

PREFETCH = 8
MAX_SPAN_SAMPLES = MAX_SPAN_MS * 8


class _Files:
    """The speakers' track files being rebuilt, byte 0 at sample ``base`` of the client clock."""

    def __init__(self, directory: Path, base: int, limit: int) -> None:
        self.directory = directory
        self.base = base
        self.limit = limit  # samples from base
        self.fds: dict[str, int] = {}

    def fd(self, speaker: str) -> int:
        fd = self.fds.get(speaker)
        if fd is None:
            fd = os.open(self.directory / f"{speaker}.pcm", os.O_WRONLY | os.O_CREAT, 0o600)
            self.fds[speaker] = fd
        return fd

    def apply(self, blob: bytes) -> None:
        header, extents = parse(blob)
        for speaker in header.speakers:
            self.fd(speaker)  # a speaker who was only ever muted still has a (silent) track
        for extent, pcm in extents:
            at = extent.start_sample - self.base
            keep = max(0, min(len(pcm) // 2, self.limit - at))  # nothing past the span's end
            if keep:
                os.pwrite(self.fd(extent.speaker), pcm[: keep * 2], at * 2)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)


async def assemble(
    storage: Storage, segments: list[SegmentRow], directory: Path
) -> FinishedTracks | None:
    """Rebuilds the tracks into ``directory``; None when the segments hold no audio at all."""
    if not segments:
        return None
    base = min(s.start_sample for s in segments)
    end = max(s.end_sample for s in segments)
    # Each writer holds its chunks to the session's limits (live/timeline.py), from what was
    # stored when it started; two fresh writers at once could still be far apart on the
    # client's clock: the recording never spans more than a session may.
    if end - base > MAX_SPAN_SAMPLES:
        log.warning("live segments span %d samples; keeping the first 12 hours", end - base)
        end = base + MAX_SPAN_SAMPLES
        segments = [s for s in segments if s.start_sample < end]
    await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    files = _Files(directory, base, end - base)
    try:
        for first in range(0, len(segments), PREFETCH):
            blobs = await _fetch(storage, segments[first : first + PREFETCH])

            def apply_all(found: list[bytes | None] = blobs) -> None:
                for blob in found:
                    if blob is not None:
                        files.apply(blob)

            await anyio.to_thread.run_sync(apply_all)
    finally:
        files.close()
    speakers = tuple(sorted(files.fds))
    if end <= base or not speakers:
        return None
    # A track shorter than the session reads back zeros past its end (FinishedTracks.blocks).
    return FinishedTracks(directory, speakers, 0, end - base)


async def _fetch(storage: Storage, batch: list[SegmentRow]) -> list[bytes | None]:
    """The batch's objects, fetched concurrently; None for one that is missing."""
    blobs: list[bytes | None] = [None] * len(batch)

    async def fetch(i: int, segment: SegmentRow) -> None:
        key = segment.storage_key
        try:
            blobs[i] = await storage.read_range(
                key, segment.byte_offset, segment.byte_offset + segment.size
            )
        except ObjectMissing:
            # Removed by hand, or by a bucket rule: its audio is silence, the call is still
            # recorded.
            log.error("live segment %s is missing from storage", key)

    async with anyio.create_task_group() as tg:
        for i, segment in enumerate(batch):
            tg.start_soon(fetch, i, segment)
    return blobs
