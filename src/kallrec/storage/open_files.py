"""Descriptors of recently read files, kept open for a moment.

System calls are slow on the machines kallrec was measured on (stat 9 µs, open 8 µs, close a few
more): a 64 KiB range answered with stat + open + pread + close spent more time asking the kernel
about the file than reading it. With the descriptor kept, a range is one pread.

A descriptor is reused for at most ``max_age`` seconds and then reopened, and the ones nobody
asked for in that time are closed (``close_stale``), so a removed file's disk space is given back
within about that time. kallrec never rewrites a stored object with different content, and drops
the descriptor of a key it writes or deletes itself; a change made to a file behind kallrec's back
is noticed within ``max_age``.

Used from the event loop's thread only: a descriptor is read right after it is looked up, with no
``await`` in between, so closing one (eviction, expiry) never pulls it from under a reader.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

MAX_FILES = 128
MAX_AGE_SECONDS = 1.0


class OpenFile(NamedTuple):
    fd: int
    size: int
    opened: float


class OpenFiles:
    def __init__(self, max_files: int = MAX_FILES, max_age: float = MAX_AGE_SECONDS) -> None:
        self.max_files = max_files
        self.max_age = max_age
        # In opening order (a reopened file moves to the end), so the oldest come first.
        self._files: dict[str, OpenFile] = {}

    def get(self, path: str) -> OpenFile:
        """The open file at ``path``; raises OSError (FileNotFoundError) as os.open does."""
        now = time.monotonic()
        found = self._files.get(path)
        if found is not None:
            if now - found.opened < self.max_age:
                return found
            self.forget(path)
        self.close_stale(now)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        while len(self._files) >= self.max_files:
            self.forget(next(iter(self._files)))
        opened = self._files[path] = OpenFile(fd, size, now)
        return opened

    def forget(self, path: str) -> None:
        found = self._files.pop(path, None)
        if found is not None:
            os.close(found.fd)

    def close_stale(self, now: float | None = None) -> None:
        """Closes the descriptors older than ``max_age`` (all of them stale by then)."""
        now = time.monotonic() if now is None else now
        while self._files:
            path, oldest = next(iter(self._files.items()))
            if now - oldest.opened < self.max_age:
                return
            self.forget(path)

    def close_all(self) -> None:
        while self._files:
            self.forget(next(iter(self._files)))

    def __len__(self) -> int:
        return len(self._files)
