"""Audio on the local file system: temp file, fsync, rename, fsync the directory."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from kallrec.storage.base import ObjectInfo, ObjectMissing, StorageError

# Large reads: a range response should cost a handful of syscalls, not one per 64 KiB.
READ_CHUNK = 1024 * 1024


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return path

    async def put_file(self, key: str, src: Path) -> ObjectInfo:
        return await anyio.to_thread.run_sync(self._put_file, key, src)

    def _put_file(self, key: str, src: Path) -> ObjectInfo:
        dest = self._path(key)
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
            return ObjectInfo(key, self._path(key).stat().st_size)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def iter_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            fd = os.open(self._path(key), os.O_RDONLY)
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        try:
            offset = start
            while offset < end:
                length = min(READ_CHUNK, end - offset)
                chunk = await anyio.to_thread.run_sync(os.pread, fd, length, offset)
                if not chunk:
                    raise StorageError(f"{key} is shorter than expected")
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

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
        self._path(key).unlink(missing_ok=True)

    async def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"{self.root} is not writable")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
