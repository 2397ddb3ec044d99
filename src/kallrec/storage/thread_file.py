"""A stored object read like a local file, from a worker thread (for libsndfile's virtual I/O).

Converting a recording on remote storage used to copy its MP3 to scratch first: per conversion
in progress, a file the size of the recording on local disk. This reads it where it is instead,
in ranged reads of ``CHUNK`` bytes, keeping the last two (a decoder glances at the file's end
once, then reads front to back in frame-sized pieces). The reads run on the event loop
(``anyio.from_thread``), so only threads started by ``anyio.to_thread`` may use it.

libsndfile calls ``read`` from C and takes an exception for the end of the file, so a failed read
is kept in ``error`` and reads as end of file from then on: whoever drives the decoder must check
``error`` (convert.py does, after every block) or it would pass off a cut recording as complete.
"""

from __future__ import annotations

import os

import anyio.from_thread

from kallrec.storage.base import Storage

CHUNK = 256 * 1024  # 65 s of a 32 kbps recording per request; two kept: 512 KiB a reader


class ThreadFile:
    def __init__(self, storage: Storage, key: str, size: int, chunk: int = CHUNK) -> None:
        self.storage = storage
        self.key = key
        self.size = size
        self.chunk = chunk
        self.position = 0
        self.error: BaseException | None = None
        self._kept: dict[int, bytes] = {}  # chunk index → bytes, oldest first

    def read(self, count: int = -1) -> bytes:
        end = self.size if count < 0 else min(self.size, self.position + count)
        pieces = []
        while self.position < end and self.error is None:
            index, at = divmod(self.position, self.chunk)
            data = self._chunk(index)
            piece = data[at : at + end - self.position]
            if not piece:
                break
            pieces.append(piece)
            self.position += len(piece)
        return b"".join(pieces)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def _chunk(self, index: int) -> bytes:
        data = self._kept.get(index)
        if data is not None:
            return data
        start = index * self.chunk
        end = min(self.size, start + self.chunk)
        try:
            data = anyio.from_thread.run(self.storage.read_range, self.key, start, end)
        except Exception as exc:  # StorageError (ObjectMissing too), or a bug: not for C to see
            self.error = exc
            return b""
        self._kept[index] = data
        while len(self._kept) > 2:
            del self._kept[next(iter(self._kept))]
        return data
