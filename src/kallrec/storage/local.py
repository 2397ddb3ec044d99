"""Audio on the local file system: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from kallrec.storage.base import ObjectInfo, ObjectMissing, StorageError
from kallrec.storage.open_files import OpenFiles

# Large reads, so a range costs a handful of syscalls; small enough that a stalled reader of a
# range pins little memory (full bodies go out through pathsend and pin nothing here).
READ_CHUNK = 128 * 1024


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._prefix = str(self.root) + os.sep
        self.open_files = OpenFiles()

    def _path(self, key: str) -> str:
        # Keys are made by kallrec, but check their shape anyway: cheaply, since this runs on
        # every download (resolving the path would cost a stat per component).
        if not key or key.startswith("/") or "\0" in key or ".." in key.split("/"):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return self._prefix + key

    async def put_file(self, key: str, src: Path) -> ObjectInfo:
        info = await anyio.to_thread.run_sync(self._put_file, key, src)
        # Here, on the event loop: the open files are only ever touched from its thread.
        self.open_files.forget(self._path(key))
        return info

    def _put_file(self, key: str, src: Path) -> ObjectInfo:
        dest = Path(self._path(key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        try:
            # Same file system: a rename is enough; otherwise copy into a temp name first.
            try:
                os.replace(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
                os.unlink(src)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
            _fsync_dir(dest.parent)
            return ObjectInfo(key, dest.stat().st_size)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"could not store {key}: {exc.strerror}") from exc

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key, os.stat(self._path(key)).st_size)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    def local_path(self, key: str) -> str | None:
        return self._path(key)

    async def iter_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        try:
            offset = start
            while offset < end:
                # Inline, not in a thread: a page-cache read of this size takes microseconds,
                # less than the hop to a worker thread would.
                chunk = os.pread(fd, min(READ_CHUNK, end - offset), offset)
                if not chunk:
                    raise StorageError(f"{key} is shorter than expected")
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        # One pread on a descriptor kept open (open_files.py), inline for the reason above.
        path = self._path(key)
        try:
            fd = self.open_files.get(path).fd
            data = os.pread(fd, end - start, start) if end > start else b""
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        except OSError as exc:
            raise StorageError(f"could not read {key}: {exc.strerror}") from exc
        if len(data) != end - start:
            self.open_files.forget(path)
            raise StorageError(f"{key} is shorter than expected")
        return data

    def close_stale_files(self) -> None:
        self.open_files.close_stale()

    def close_all_files(self) -> None:
        self.open_files.close_all()

    async def read_all(self, key: str) -> bytes:
        try:
            return await anyio.Path(self._path(key)).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc

    async def fetch_to(self, key: str, dest: Path) -> None:
        try:
            await anyio.to_thread.run_sync(shutil.copyfile, self._path(key), dest)
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc

    async def delete(self, key: str) -> None:
        path = self._path(key)
        self.open_files.forget(path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

    async def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
