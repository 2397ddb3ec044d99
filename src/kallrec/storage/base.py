"""What kallrec needs from a place to keep audio.

Objects are written complete-or-absent (``put_file``), read by byte range, and removed. A backend
that can hand the server a local path (``local_path``) lets full downloads go out zero-copy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class StorageError(Exception):
    """The backend could not be reached or failed; the API answers 503."""


class ObjectMissing(StorageError):
    """The object is not in the store."""


class Storage(Protocol):
    async def put_file(self, key: str, src: Path) -> ObjectInfo:
        """Stores ``src`` (which the call consumes) under ``key``, atomically and durably."""
        ...

    async def stat(self, key: str) -> ObjectInfo | None: ...

    def local_path(self, key: str) -> str | None:
        """A path the web server may send directly, or None when the object is remote."""
        ...

    def iter_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the object, in chunks."""
        ...

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        """The bytes [start, end) at once (a short range: at most a few chunks), all of them or
        ObjectMissing/StorageError: an object found shorter than ``end`` is an error."""
        ...

    async def read_all(self, key: str) -> bytes: ...

    async def fetch_to(self, key: str, dest: Path) -> None:
        """Copies the object to a local file (for processing)."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the object; removing a missing object is not an error."""
        ...

    async def ping(self) -> None: ...


@runtime_checkable
class KeepsFilesOpen(Protocol):
    """A backend that keeps descriptors open between reads (local disk): optional, checked with
    ``isinstance``. The server calls ``close_stale_files`` every second."""

    def close_stale_files(self) -> None: ...

    def close_all_files(self) -> None: ...


@runtime_checkable
class Presigning(Protocol):
    """A backend whose objects a client can fetch directly (S3): optional, checked with
    ``isinstance``. Local and memory storage have no such URL; kallrec serves their bytes."""

    def presign_get(self, key: str, *, filename: str, content_type: str, expires: int) -> str:
        """A URL that serves the object for ``expires`` seconds as an attachment named
        ``filename`` with ``content_type``, to anyone holding it."""
        ...
