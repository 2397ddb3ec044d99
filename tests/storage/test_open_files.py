from __future__ import annotations

import os
from pathlib import Path

import pytest

from kallrec.storage import LocalStorage
from kallrec.storage.open_files import OpenFiles


def _file(tmp_path: Path, name: str, data: bytes = b"abc") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_a_file_read_again_soon_reuses_its_descriptor(tmp_path: Path) -> None:
    files = OpenFiles(max_age=60)
    path = _file(tmp_path, "a", b"hello")
    first = files.get(path)
    assert (first.size, os.pread(first.fd, 5, 0)) == (5, b"hello")
    assert files.get(path).fd == first.fd
    files.close_all()
    assert not _is_open(first.fd)


def test_an_old_descriptor_is_reopened_and_sees_the_file_as_it_is_now(tmp_path: Path) -> None:
    files = OpenFiles(max_age=60)
    path = _file(tmp_path, "a", b"old")
    assert files.get(path).size == 3
    os.replace(_file(tmp_path, "b", b"newer"), path)
    files.max_age = 0  # everything open is now too old
    second = files.get(path)
    assert second.size == 5 and os.pread(second.fd, 5, 0) == b"newer"
    assert len(files) == 1  # the old descriptor was closed, not leaked
    files.close_all()


def test_close_stale_closes_only_what_is_past_its_age(tmp_path: Path) -> None:
    files = OpenFiles(max_age=10)
    a, b = files.get(_file(tmp_path, "a")), files.get(_file(tmp_path, "b"))
    files.close_stale(now=b.opened + 5)
    assert len(files) == 2
    files.close_stale(now=b.opened + 10)
    assert len(files) == 0 and not _is_open(a.fd) and not _is_open(b.fd)


def test_the_oldest_descriptor_goes_when_the_cache_is_full(tmp_path: Path) -> None:
    files = OpenFiles(max_files=2, max_age=60)
    a = files.get(_file(tmp_path, "a"))
    files.get(_file(tmp_path, "b"))
    files.get(_file(tmp_path, "c"))
    assert len(files) == 2 and not _is_open(a.fd)
    files.close_all()


def test_a_missing_file_raises_and_leaves_nothing_open(tmp_path: Path) -> None:
    files = OpenFiles()
    with pytest.raises(FileNotFoundError):
        files.get(str(tmp_path / "missing"))
    assert len(files) == 0


async def test_local_storage_answers_for_a_file_truncated_behind_its_back(tmp_path: Path) -> None:
    """A descriptor kept open must not turn a damaged file into a short answer."""
    storage = LocalStorage(tmp_path / "store")
    src = tmp_path / "src"
    src.write_bytes(b"x" * 1000)
    await storage.put_file("k", src)
    assert await storage.read_range("k", 900, 1000) == b"x" * 100
    os.truncate(storage.local_path("k") or "", 500)
    with pytest.raises(Exception, match="shorter than expected"):
        await storage.read_range("k", 900, 1000)
    assert await storage.read_range("k", 0, 500) == b"x" * 500  # reopened: what is there
    storage.open_files.close_all()
