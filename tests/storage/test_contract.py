"""One contract, every Storage backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kallrec.storage import LocalStorage, MemoryStorage, ObjectMissing, Storage, StorageError
from tests.storage.conftest import s3_storage

BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "memory": lambda root: MemoryStorage(),
    "local": lambda root: LocalStorage(root / "store"),
}


@pytest.fixture(params=[*sorted(BACKENDS), "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "s3":  # a fresh bucket on the session's moto server (real S3 over HTTP)
        return s3_storage(request.getfixturevalue("moto_s3"))
    return BACKENDS[request.param](tmp_path)


def _src(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return path


async def test_put_stat_and_read_back(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096
    info = await storage.put_file("a/b.mp3", _src(tmp_path, data))
    assert info.size == len(data)
    assert (await storage.stat("a/b.mp3")).size == len(data)  # type: ignore[union-attr]
    assert await storage.read_all("a/b.mp3") == data


async def test_put_consumes_the_source(storage: Storage, tmp_path: Path) -> None:
    src = _src(tmp_path, b"x")
    await storage.put_file("k", src)
    assert not src.exists()


async def test_ranges_are_exact(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000
    await storage.put_file("k", _src(tmp_path, data))
    for start, end in [(0, 1), (5, 70_000), (len(data) - 3, len(data)), (0, len(data))]:
        chunks = [c async for c in storage.iter_range("k", start, end)]
        assert b"".join(chunks) == data[start:end]


async def test_read_range_returns_exactly_the_range(storage: Storage, tmp_path: Path) -> None:
    data = bytes(range(256)) * 1_000
    await storage.put_file("k", _src(tmp_path, data))
    for start, end in [(0, 1), (5, 70_000), (len(data) - 3, len(data)), (7, 7)]:
        assert await storage.read_range("k", start, end) == data[start:end]


async def test_read_range_past_the_end_is_an_error_not_a_short_answer(
    storage: Storage, tmp_path: Path
) -> None:
    await storage.put_file("k", _src(tmp_path, b"0123456789"))
    with pytest.raises(StorageError):
        await storage.read_range("k", 5, 11)
    with pytest.raises(ObjectMissing):
        await storage.read_range("nope", 0, 10)


async def test_overwrite_replaces_whole(storage: Storage, tmp_path: Path) -> None:
    await storage.put_file("k", _src(tmp_path, b"first version"))
    assert await storage.read_range("k", 0, 5) == b"first"
    await storage.put_file("k", _src(tmp_path, b"2nd"))
    assert await storage.read_all("k") == b"2nd"
    assert await storage.read_range("k", 0, 3) == b"2nd"
    assert (await storage.stat("k")).size == 3  # type: ignore[union-attr]


async def test_missing_objects(storage: Storage, tmp_path: Path) -> None:
    assert await storage.stat("nope") is None
    with pytest.raises(ObjectMissing):
        await storage.read_all("nope")
    with pytest.raises(ObjectMissing):
        await storage.fetch_to("nope", tmp_path / "out")
    await storage.delete("nope")  # not an error


async def test_delete_removes(storage: Storage, tmp_path: Path) -> None:
    await storage.put_file("k", _src(tmp_path, b"abc"))
    assert await storage.read_range("k", 0, 3) == b"abc"
    await storage.delete("k")
    assert await storage.stat("k") is None
    with pytest.raises(ObjectMissing):
        await storage.read_range("k", 0, 3)


async def test_fetch_to_copies(storage: Storage, tmp_path: Path) -> None:
    await storage.put_file("k", _src(tmp_path, b"hello"))
    await storage.fetch_to("k", tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"hello"


async def test_local_storage_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    with pytest.raises(ValueError, match="escapes"):
        await storage.put_file("../evil", _src(tmp_path, b"x"))


async def test_local_storage_leaves_no_temp_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    await storage.put_file("a/b", _src(tmp_path, b"x"))
    assert [p.name for p in (tmp_path / "store").rglob("*")] == ["a", "b"]


async def test_empty_objects(storage: Storage, tmp_path: Path) -> None:
    info = await storage.put_file("empty", _src(tmp_path, b""))
    assert info.size == 0
    assert (await storage.stat("empty")).size == 0  # type: ignore[union-attr]
    assert await storage.read_all("empty") == b""
    assert b"".join([c async for c in storage.iter_range("empty", 0, 0)]) == b""


async def test_reading_a_missing_range_raises(storage: Storage) -> None:
    with pytest.raises(ObjectMissing):
        async for _ in storage.iter_range("nope", 0, 10):
            pass


async def test_ping(storage: Storage) -> None:
    await storage.ping()
