"""Scratch files inside the data directory (same file system as the audio: renames stay cheap)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


# Scratch older than this belongs to a process that died mid-task (every live task touches its
# files far more often): remove it.
ABANDONED_AFTER_SECONDS = 3600


def scratch_dir(tmp_dir: Path, pid: int) -> Path:
    return tmp_dir / f"p{pid}"


def _owner(entry: Path) -> int | None:
    name = entry.name
    return int(name[1:]) if name.startswith("p") and name[1:].isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    # A killed process nobody has reaped yet (containers often have no init to do it) still
    # answers signal 0; it is a zombie, as dead as it gets.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def sweep(tmp_dir: Path, now: float) -> int:
    """Removes the scratch of processes that are gone, and stray files left long ago; returns
    how many entries it removed. A live process's scratch is never touched."""
    removed = 0
    for entry in tmp_dir.glob("*") if tmp_dir.exists() else ():
        try:
            owner = _owner(entry)
            if owner is not None and _alive(owner):
                continue
            if owner is None and now - entry.lstat().st_mtime < ABANDONED_AFTER_SECONDS:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def new_temp_path(tmp_dir: Path, suffix: str) -> Path:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=suffix)
    os.close(fd)
    return Path(name)


def copy_to_temp(src: Path, tmp_dir: Path) -> Path:
    dest = new_temp_path(tmp_dir, src.suffix)
    shutil.copyfile(src, dest)
    return dest


def spool(source: BinaryIO, tmp_dir: Path, digest: _Hash, suffix: str) -> tuple[Path, int]:
    """Copies a file object into a new temp file, hashing it; returns the path and size."""
    dest = new_temp_path(tmp_dir, suffix)
    size = 0
    with dest.open("wb") as out:
        while chunk := source.read(1024 * 1024):
            size += len(chunk)
            digest.update(chunk)
            out.write(chunk)
    return dest, size
