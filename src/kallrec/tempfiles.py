"""Scratch files inside the data directory (same file system as the audio: renames stay cheap)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


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
