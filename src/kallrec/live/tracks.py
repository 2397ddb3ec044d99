"""Per-speaker tracks of a live session, on disk as they arrive.

Each track is a raw 16-bit PCM file at 8 kHz in which a chunk is written at the byte offset of its
``timestamp_ms``. That one rule gives every property the stream promises: gaps are file holes
(read back as zeros: silence), a late chunk lands where it belongs, an overlapping or duplicated
chunk overwrites rather than doubles, and a reconnect (or another worker process) simply keeps
writing into the same files. The data is in the kernel's page cache as soon as ``pwrite`` returns,
so killing the server loses nothing received; a periodic fsync bounds what a power cut can take.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

BYTES_PER_MS = 16  # 8 samples per millisecond, 2 bytes each


class SessionTracks:
    """The open track files of one session in this process."""

    def __init__(self, directory: Path) -> None:
        from kallrec.audio.mulaw import mulaw_decode  # NumPy: loaded with the first live call

        self._decode = mulaw_decode
        self.directory = directory
        self._fds: dict[str, int] = {}
        self.dirty = False

    def write(self, speaker: str, timestamp_ms: int, mulaw: bytes) -> None:
        fd = self._fds.get(speaker)
        if fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{speaker}.pcm", os.O_WRONLY | os.O_CREAT, 0o600)
            self._fds[speaker] = fd
        os.pwrite(fd, self._decode(mulaw).tobytes(), timestamp_ms * BYTES_PER_MS)
        self.dirty = True

    def sync(self) -> None:
        """Makes what was written durable (run off the event loop)."""
        self.dirty = False
        for fd in list(self._fds.values()):
            with contextlib.suppress(OSError):  # closed meanwhile
                os.fdatasync(fd)

    def close(self) -> None:
        fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


def track_dir(data_dir: Path, session_id: str) -> Path:
    return data_dir / "live" / session_id


def read_tracks(directory: Path) -> dict[str, np.ndarray]:
    """Each speaker's samples, all padded to the longest so they stay aligned in time."""
    import numpy as np

    tracks = {
        path.stem: np.fromfile(path, dtype="<i2")
        for path in sorted(directory.glob("*.pcm"))
        if path.stem in ("agent", "customer")
    }
    longest = max((len(x) for x in tracks.values()), default=0)
    return {name: np.pad(x, (0, longest - len(x))) for name, x in tracks.items()}


def remove_tracks(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
