"""ThreadFile: a stored object read like a file from a worker thread, and a conversion that reads
one (how a recording on S3 is converted without a scratch copy)."""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import numpy as np
import pytest
import soundfile as sf

from kallrec.audio import convert
from kallrec.audio.encode import encode_mp3
from kallrec.storage import MemoryStorage, StorageError
from kallrec.storage.thread_file import ThreadFile

DATA = bytes(range(256)) * 40  # 10,240 bytes


async def stored(data: bytes, tmp_path: Path, key: str = "k") -> MemoryStorage:
    storage = MemoryStorage()
    src = tmp_path / "src"
    src.write_bytes(data)
    await storage.put_file(key, src)
    return storage


class FailingAfter(MemoryStorage):
    """Answers ``reads`` range reads, then fails like an unreachable store."""

    def __init__(self, reads: int) -> None:
        super().__init__()
        self.reads = reads

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        if self.reads == 0:
            raise StorageError("the store went away")
        self.reads -= 1
        return await super().read_range(key, start, end)


async def test_reads_seeks_and_chunk_boundaries(tmp_path: Path) -> None:
    storage = await stored(DATA, tmp_path)
    f = ThreadFile(storage, "k", len(DATA), chunk=1000)

    def use() -> list[bytes]:
        return [
            f.read(10),
            f.read(1995),  # across two boundaries
            str(f.seek(-5, 2)).encode(),  # from the end
            f.read(),
            f.read(7),  # at the end: nothing
            str(f.seek(3) == f.tell() == 3).encode(),
            f.read(-1),
        ]

    got = await anyio.to_thread.run_sync(use)
    assert got[0] == DATA[:10] and got[1] == DATA[10:2005]
    assert got[2] == str(len(DATA) - 5).encode() and got[5] == b"True"
    assert got[3] == DATA[-5:] and got[4] == b""
    assert got[6] == DATA[3:]
    assert f.error is None
    assert len(f._kept) <= 2  # memory: two chunks whatever the object's size


async def test_a_failed_read_is_kept_and_reads_as_the_end(tmp_path: Path) -> None:
    storage = FailingAfter(reads=1)
    src = tmp_path / "src"
    src.write_bytes(DATA)
    await storage.put_file("k", src)
    f = ThreadFile(storage, "k", len(DATA), chunk=4096)

    first, second = await anyio.to_thread.run_sync(lambda: (f.read(4096), f.read(4096)))
    assert first == DATA[:4096] and second == b""
    assert isinstance(f.error, StorageError)


async def test_an_object_shorter_than_announced_is_an_error(tmp_path: Path) -> None:
    storage = await stored(DATA, tmp_path)
    f = ThreadFile(storage, "k", len(DATA) + 100, chunk=4096)
    await anyio.to_thread.run_sync(lambda: f.read())
    assert isinstance(f.error, StorageError)


@pytest.fixture
def mp3() -> bytes:
    t = np.arange(8000 * 40) / 8000
    return encode_mp3((np.sin(2 * np.pi * 440 * t) * 9000).astype(np.int16))


async def test_a_conversion_reads_a_stored_mp3_as_a_file(mp3: bytes, tmp_path: Path) -> None:
    storage = await stored(mp3, tmp_path)
    (tmp_path / "local.mp3").write_bytes(mp3)

    def both() -> tuple[bytes, bytes]:
        remote = ThreadFile(storage, "k", len(mp3), chunk=4096)
        return (
            b"".join(convert.converted_chunks(remote, "wav", 16000)),
            b"".join(convert.converted_chunks(tmp_path / "local.mp3", "wav", 16000)),
        )

    remote, local = await anyio.to_thread.run_sync(both)
    assert remote == local
    assert sf.info(io.BytesIO(remote)).samplerate == 16000


@pytest.mark.parametrize("reads", [0, 1, 5])
async def test_a_store_failing_mid_conversion_raises_never_a_shortened_file(
    mp3: bytes, tmp_path: Path, reads: int
) -> None:
    """libsndfile takes a failed read for the end of the file: without the check, the WAV would
    come out complete-looking (its length is fixed in advance) with silence for the rest."""
    storage = FailingAfter(reads)
    src = tmp_path / "src"
    src.write_bytes(mp3)
    await storage.put_file("k", src)

    def convert_all() -> bytes:
        remote = ThreadFile(storage, "k", len(mp3), chunk=4096)
        return b"".join(convert.converted_chunks(remote, "wav", 16000))

    with pytest.raises(StorageError, match="went away"):
        await anyio.to_thread.run_sync(convert_all)
