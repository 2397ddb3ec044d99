"""A change counter shared by every kallrec process on this host, for cache invalidation.

Processes cache keys and ready recordings so that a download costs no database query. When any
process (a server worker, or the CLI) revokes a key, deletes or purges a recording, or changes a
retention period, it bumps this counter; every process compares it with the value it last saw at
the start of each request (an 8-byte read from shared memory) and drops its caches when it moved.
So such changes take effect at once for every process sharing the data directory. Replicas on
other hosts still see them within ``cache_ttl_seconds``.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from pathlib import Path

SIZE = 8


class ChangeCounter:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < SIZE:
                os.ftruncate(fd, SIZE)
            self._map = mmap.mmap(fd, SIZE)
        finally:
            os.close(fd)
        self._lock_path = path
        self.seen = self.value()

    def value(self) -> int:
        return int.from_bytes(self._map[:SIZE], "little")

    def bump(self) -> None:
        # The lock makes read-increment-write atomic across processes.
        with open(self._lock_path, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                self._map[:SIZE] = (self.value() + 1).to_bytes(SIZE, "little")
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def changed(self) -> bool:
        """True once after another process (or this one) bumped the counter."""
        current = self.value()
        if current == self.seen:
            return False
        self.seen = current
        return True

    def close(self) -> None:
        self._map.close()
