"""Audio in a dict: for unit tests of code that only needs the Storage contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from kallrec.storage.base import ObjectInfo, ObjectMissing, StorageError


class MemoryStorage:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put_file(self, key: str, src: Path) -> ObjectInfo:
        data = await anyio.Path(src).read_bytes()
        await anyio.Path(src).unlink()
        self.objects[key] = data
        return ObjectInfo(key, len(data))

    async def stat(self, key: str) -> ObjectInfo | None:
        data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data))

    def local_path(self, key: str) -> str | None:
        return None

    async def iter_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        yield (await self.read_all(key))[start:end]

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        data = (await self.read_all(key))[start:end]
        if len(data) != end - start:
            raise StorageError(f"{key} is shorter than expected")
        return data

    async def read_all(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError as exc:
            raise ObjectMissing(key) from exc

    async def fetch_to(self, key: str, dest: Path) -> None:
        await anyio.Path(dest).write_bytes(await self.read_all(key))

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    async def ping(self) -> None:
        return None
