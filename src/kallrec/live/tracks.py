"""Per-speaker tracks of a live session, on disk as they arrive.

Each track is a raw 16-bit PCM file at 8 kHz in which a chunk is written at the byte offset of
its ``timestamp_ms`` on the session's timeline (live/timeline.py: the client's clock, shifted so
that the session's first chunk sits just after a small reserve). That one rule gives every
property the stream promises: gaps are file holes (read back as zeros: silence), a late chunk
lands where it belongs, an overlapping or duplicated chunk overwrites rather than doubles, and a
reconnect (or another worker process) simply keeps writing into the same files. The data is in
the kernel's page cache as soon as ``pwrite`` returns, so killing the server loses nothing
received; a periodic fsync bounds what a power cut can take.

These files are the process's write buffer, not the recording: every round the flusher
(live/flush.py) takes what was written since the previous round (``take``), sends it to storage as
one segment (live/segments.py) and then gives the flushed ranges' disk space back (``release``,
a punched hole), so a replica keeps only what it has not flushed yet. Each set of tracks has a
directory of its own (one per process and session), so two processes never share a file.

Finishing reads the tracks back block by block (``FinishedTracks.blocks``), so turning a call of
any length into recordings needs the memory of one block, not of the call.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from kallrec.live.messages import StreamError
from kallrec.live.segments import Extent, SegmentHeader
from kallrec.live.timeline import DEFAULT_MAX_JUMP_MS, Timeline, check, read_origin

if TYPE_CHECKING:
    import numpy as np

SPEAKERS = ("agent", "customer")
BYTES_PER_MS = 16  # 8 samples per millisecond, 2 bytes each
# Samples per block when reading back: 32 s, 512 KiB per track.
BLOCK_SAMPLES = 1 << 18


class SessionTracks:
    """The open track files of one session in this process."""

    def __init__(self, directory: Path) -> None:
        from kallrec.audio.mulaw import mulaw_decode  # NumPy: loaded with the first live call

        self._decode = mulaw_decode
        self.directory = directory
        self.timeline = Timeline(directory)
        self._fds: dict[str, int] = {}
        self._end_bytes = self._longest_file()
        self._known_end_ms = 0  # the furthest audio other writers stored (seed())
        self.dirty = False
        # Written since the last take(): byte ranges per speaker (sorted, merged), and the span
        # (data and muted time alike) in bytes of the track files.
        self._unflushed: dict[str, list[list[int]]] = {}
        self._span: list[int] | None = None
        self._span_speakers: set[str] = set()
        # Set by the flusher while storage cannot take this process's backlog (see write()).
        self.refusal: StreamError | None = None

    def write(
        self,
        speaker: str,
        timestamp_ms: int,
        mulaw: bytes,
        *,
        max_jump_ms: int = DEFAULT_MAX_JUMP_MS,
        muted: bool = False,
    ) -> None:
        """Places a chunk; raises StreamError ``timestamp_out_of_range`` (writing nothing) when
        its timestamp is outside what the session accepts (live/timeline.py).

        A ``muted`` chunk (the older protocol's ``control: mute``) is held to the same rules and
        moves the track's end on as a real one would, but its audio is not written: its span
        stays silence, and audio already received there (a duplicate) is kept. Its time still
        counts, so unmuting after a long mute is no jump, and a call that ends muted lasts as
        long as it did."""
        if not mulaw:
            return
        if self.refusal is not None:
            raise self.refusal
        pcm = b"" if muted else self._decode(mulaw).tobytes()
        length = len(mulaw) * 2
        origin = self.timeline.origin or self.timeline.establish(timestamp_ms)
        try:
            check(timestamp_ms, len(mulaw) / 8, origin, self._end_ms(), max_jump_ms)
        except StreamError:
            # Before refusing: another process serving this session may have moved the start
            # back or the audio on.
            self.timeline.reload()
            self._end_bytes = self._longest_file()
            origin = self.timeline.origin or origin
            check(timestamp_ms, len(mulaw) / 8, origin, self._end_ms(), max_jump_ms)
        if timestamp_ms < origin.start_ms:
            self.timeline.move_start(timestamp_ms)
        offset = (timestamp_ms - origin.base_ms) * BYTES_PER_MS
        if muted:
            _extend(self._fd(speaker), offset, length)
        else:
            os.pwrite(self._fd(speaker), pcm, offset)
            _add_range(self._unflushed.setdefault(speaker, []), offset, offset + length)
        self._end_bytes = max(self._end_bytes, offset + length)
        self._span_speakers.add(speaker)
        if self._span is None:
            self._span = [offset, offset + length]
        else:
            self._span[0] = min(self._span[0], offset)
            self._span[1] = max(self._span[1], offset + length)
        self.dirty = True

    @property
    def unflushed(self) -> bool:
        return self._span is not None

    def take(self, session_id: str, max_bytes: int) -> Cut | None:
        """What was written since the last take, as the plan of one segment (at most
        ``max_bytes`` of PCM; the rest stays for the next one). Runs on the event loop, between
        writes: what is written after it is the next segment's."""
        if self._span is None or self.timeline.origin is None:
            return None
        base = self.timeline.origin.base_ms * 8  # byte offset 0, in client-clock samples
        budget = max_bytes
        taken: list[tuple[str, int, int]] = []
        for speaker in sorted(self._unflushed):
            ranges = self._unflushed[speaker]
            while ranges and budget > 0:
                start, end = ranges[0]
                if end - start > budget:
                    cut = start + budget - budget % 2
                    if cut <= start:
                        break
                    ranges[0][0] = cut
                    end = cut
                else:
                    ranges.pop(0)
                taken.append((speaker, start, end))
                budget -= end - start
        left = any(self._unflushed.values())
        span_start, span_end = self._span
        speakers = tuple(sorted(self._span_speakers))
        if left:  # the span of a partial take: what it carries, muted time waits for the rest
            span_start = min(start for _, start, _ in taken)
            span_end = max(end for _, _, end in taken)
        else:
            self._unflushed = {}
            self._span = None
            self._span_speakers = set()
        header = SegmentHeader(
            session_id,
            speakers,
            base + span_start // 2,
            base + span_end // 2,
            tuple(Extent(sp, base + start // 2, (end - start) // 2) for sp, start, end in taken),
        )
        return Cut(self.directory, header, tuple(taken))

    def release(self, cut: Cut) -> None:
        """Gives back the disk space of a flushed cut, except where audio was written again
        since (it belongs to a later segment). Runs on the event loop."""
        for speaker, start, end in cut.ranges:
            fd = self._fds.get(speaker)
            if fd is None:
                continue
            for hole_start, hole_end in _subtract(start, end, self._unflushed.get(speaker, [])):
                _punch_hole(fd, hole_start, hole_end - hole_start)

    def untake(self, cut: Cut) -> None:
        """A cut that will not be flushed (its segment could not be written): its ranges are
        unflushed again."""
        for speaker, start, end in cut.ranges:
            _add_range(self._unflushed.setdefault(speaker, []), start, end)
        if cut.ranges:
            start = min(r[1] for r in cut.ranges)
            end = max(r[2] for r in cut.ranges)
            self._span = (
                [start, end]
                if self._span is None
                else [
                    min(self._span[0], start),
                    max(self._span[1], end),
                ]
            )
            self._span_speakers.update(r[0] for r in cut.ranges)

    def _end_ms(self) -> int:
        origin = self.timeline.origin
        assert origin is not None
        end = max(origin.start_ms, origin.base_ms + self._end_bytes // BYTES_PER_MS)
        return max(end, self._known_end_ms)

    def seed(self, start_ms: int, end_ms: int) -> None:
        """Starts these tracks from what other writers already stored of the session (its start
        and furthest point, client clock), so the limits on where a chunk may land hold for
        the session as a whole, whichever replica each chunk reaches."""
        if self.timeline.origin is None:
            self.timeline.establish(start_ms)
        self._known_end_ms = max(self._known_end_ms, end_ms)

    def _fd(self, speaker: str) -> int:
        fd = self._fds.get(speaker)
        if fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{speaker}.pcm", os.O_WRONLY | os.O_CREAT, 0o600)
            self._fds[speaker] = fd
        return fd

    def _longest_file(self) -> int:
        sizes = [0]
        for speaker in SPEAKERS:
            with contextlib.suppress(FileNotFoundError):
                sizes.append((self.directory / f"{speaker}.pcm").stat().st_size)
        return max(sizes)

    def sync(self) -> None:
        """Makes what was written durable (run off the event loop)."""
        self.dirty = False
        self.timeline.sync()
        for fd in list(self._fds.values()):
            with contextlib.suppress(OSError):  # closed meanwhile
                os.fdatasync(fd)

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


@dataclass(frozen=True)
class Cut:
    """One segment's worth of a session's tracks: its header, and the byte ranges to read."""

    directory: Path
    header: SegmentHeader
    ranges: tuple[tuple[str, int, int], ...]  # speaker, start, end (bytes of the track file)

    @property
    def pcm_bytes(self) -> int:
        return sum(end - start for _, start, end in self.ranges)

    def write(self, out: BinaryIO) -> int:
        """Appends the segment to ``out`` (off the event loop); returns its size."""
        began = out.tell()
        with contextlib.ExitStack() as stack:
            out.write(self.header.to_bytes())
            fds: dict[str, int] = {}
            for speaker, start, end in self.ranges:
                if speaker not in fds:
                    fds[speaker] = os.open(self.directory / f"{speaker}.pcm", os.O_RDONLY)
                    stack.callback(os.close, fds[speaker])
                data = os.pread(fds[speaker], end - start, start)
                # A file shorter than what was written cannot happen; zeros keep the layout.
                out.write(data.ljust(end - start, b"\0"))
        return out.tell() - began


def _add_range(ranges: list[list[int]], start: int, end: int) -> None:
    """Adds [start, end) to sorted, disjoint ranges, merging what touches."""
    if not ranges or start > ranges[-1][1]:  # the usual case: audio arrives in order
        ranges.append([start, end])
        return
    if start >= ranges[-1][0]:
        ranges[-1][1] = max(ranges[-1][1], end)
        return
    i = bisect.bisect_left(ranges, [start, start])
    if i > 0 and ranges[i - 1][1] >= start:
        i -= 1
    j = i
    while j < len(ranges) and ranges[j][0] <= end:
        start = min(start, ranges[j][0])
        end = max(end, ranges[j][1])
        j += 1
    ranges[i:j] = [[start, end]]


def _subtract(start: int, end: int, ranges: list[list[int]]) -> Iterator[tuple[int, int]]:
    """[start, end) minus the (sorted, disjoint) ranges."""
    at = start
    for r_start, r_end in ranges:
        if r_end <= at:
            continue
        if r_start >= end:
            break
        if r_start > at:
            yield at, r_start
        at = max(at, r_end)
    if at < end:
        yield at, end


_FALLOC_FL_KEEP_SIZE = 1
_FALLOC_FL_PUNCH_HOLE = 2


def _load_fallocate() -> Callable[[int, int, int, int], int] | None:
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):  # not Linux: the flushed audio keeps its disk space
        return None
    fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    fallocate.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", fallocate)


_fallocate = _load_fallocate()


def _punch_hole(fd: int, offset: int, length: int) -> None:
    """Frees the disk space of a flushed range; the file keeps its size (its end is still the
    track's end) and reads back zeros there."""
    if _fallocate is not None and length > 0:
        _fallocate(fd, _FALLOC_FL_KEEP_SIZE | _FALLOC_FL_PUNCH_HOLE, offset, length)


def _extend(fd: int, offset: int, length: int) -> None:
    """Makes the track reach ``offset + length`` without writing over anything in it.

    posix_fallocate grows a file, never shrinks it, and leaves the data in it alone, all in one
    call: another process writing this session's track at the same moment loses nothing (a
    read of the size followed by a truncate could cut its audio off)."""
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError:
        # A file system without it (and no C library emulation): zeros past the current end
        # only, which is where nothing has been written yet.
        end = offset + length
        size = os.fstat(fd).st_size
        if size < end:
            start = max(size, offset)
            os.pwrite(fd, bytes(end - start), start)


@dataclass(frozen=True)
class FinishedTracks:
    """What an ended session left on disk: its speakers' tracks from the timeline's start."""

    directory: Path
    speakers: tuple[str, ...]
    offset: int  # byte of the timeline's start in every track file
    samples: int  # the session's length: from its start to the furthest audio, either speaker

    def blocks(self, block_samples: int = BLOCK_SAMPLES) -> Iterator[dict[str, np.ndarray]]:
        """Each speaker's samples, block by block, all the same length (silence past a track's
        end), so the tracks stay aligned in time."""
        with contextlib.ExitStack() as stack:
            fds = {}
            for speaker in self.speakers:
                fd = os.open(self.directory / f"{speaker}.pcm", os.O_RDONLY)
                stack.callback(os.close, fd)
                fds[speaker] = fd
            for first in range(0, self.samples, block_samples):
                count = min(block_samples, self.samples - first)
                yield {
                    speaker: _read_block(fd, self.offset + first * 2, count)
                    for speaker, fd in fds.items()
                }


def _read_block(fd: int, offset: int, count: int) -> np.ndarray:
    import numpy as np

    block = np.zeros(count, dtype="<i2")
    view = block.data.cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:  # past the end of this track: the zeros stay
            break
        done += got
    return block


def finished_tracks(directory: Path) -> FinishedTracks | None:
    """The session's tracks to finalize, or None when no audio was ever written."""
    origin = read_origin(directory) if directory.exists() else None
    if origin is None:
        return None
    sizes = {}
    for speaker in SPEAKERS:
        with contextlib.suppress(FileNotFoundError):
            sizes[speaker] = (directory / f"{speaker}.pcm").stat().st_size
    offset = (origin.start_ms - origin.base_ms) * BYTES_PER_MS
    samples = (max(sizes.values(), default=0) - offset) // 2
    if samples <= 0:
        return None
    return FinishedTracks(directory, tuple(sizes), offset, samples)


def track_dir(data_dir: Path, session_id: str) -> Path:
    return data_dir / "live" / session_id


def remove_tracks(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
