"""Per-speaker tracks of a live session, on disk as they arrive.

Each track is a raw 16-bit PCM file at 8 kHz in which a chunk is written at the byte offset of
its ``timestamp_ms`` on the session's timeline (live/timeline.py: the client's clock, shifted so
that the session's first chunk sits just after a small reserve). That one rule gives every
property the stream promises: gaps are file holes (read back as zeros: silence), a late chunk
lands where it belongs, an overlapping or duplicated chunk overwrites rather than doubles, and a
reconnect (or another worker process) simply keeps writing into the same files. The data is in
the kernel's page cache as soon as ``pwrite`` returns, so killing the server loses nothing
received; a periodic fsync bounds what a power cut can take.

Finishing reads the tracks back block by block (``FinishedTracks.blocks``), so turning a call of
any length into recordings needs the memory of one block, not of the call.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kallrec.live.messages import StreamError
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
        self.dirty = False

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
        self._end_bytes = max(self._end_bytes, offset + length)
        self.dirty = True

    def _end_ms(self) -> int:
        origin = self.timeline.origin
        assert origin is not None
        return max(origin.start_ms, origin.base_ms + self._end_bytes // BYTES_PER_MS)

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
