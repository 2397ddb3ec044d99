"""Converted copies of recordings (GET …/download), cached in storage next to the MP3s.

``converted/<recording_id>/<sample_rate>.<ext>`` is made at most once per format and rate and
kept until the recording is deleted or purged (``converted_keys`` lists what the reaper removes).
A conversion is built in a temp file and stored with one atomic ``put_file``, so concurrent
requests can at worst convert twice; nobody ever sees a partial file. MP3 at 8 kHz is the
recording itself and is never copied.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from kallrec.audio.formats import CONTENT_TYPES, FORMATS, SAMPLE_RATES
from kallrec.storage import ObjectInfo, StorageError

if TYPE_CHECKING:  # the repository imports converted_keys: no import of it from here
    from kallrec.db.models import Recording
    from kallrec.runtime import Runtime

# Conversions are CPU work (up to a few seconds for a long call): at most one per core at once.
# A thread semaphore, unlike an anyio limiter, is not tied to one event loop.
_cpu = threading.BoundedSemaphore(os.cpu_count() or 1)
# One conversion per key in this process; the others wait for it and reuse its result.
_building: dict[str, tuple[anyio.Lock, int]] = {}


@dataclass(frozen=True)
class Converted:
    key: str
    size: int
    content_type: str
    filename: str


def converted_key(recording_id: str, fmt: str, sample_rate: int) -> str:
    return f"converted/{recording_id}/{sample_rate}.{fmt}"


def converted_keys(recording_id: str) -> list[str]:
    """Every key a recording's conversions can have (deleting a missing one is harmless)."""
    return [
        converted_key(recording_id, fmt, rate)
        for fmt in FORMATS
        for rate in SAMPLE_RATES
        if not _is_original(fmt, rate)
    ]


def download_filename(rec: Recording, fmt: str) -> str:
    return f"recording-{rec.session_id}.{fmt}"


def _is_original(fmt: str, sample_rate: int) -> bool:
    return fmt == "mp3" and sample_rate == 8000


async def ensure_converted(rt: Runtime, rec: Recording, fmt: str, sample_rate: int) -> Converted:
    """The stored object for this format and rate, converting it first if needed.

    Raises StorageError when the storage cannot be read or written.
    """
    assert rec.storage_key is not None and rec.size is not None
    content_type, filename = CONTENT_TYPES[fmt], download_filename(rec, fmt)
    if _is_original(fmt, sample_rate):
        original = await rt.storage.stat(rec.storage_key)
        if original is None or original.size != rec.size:
            raise StorageError(f"{rec.storage_key} is missing or incomplete")
        return Converted(rec.storage_key, rec.size, content_type, filename)
    key = converted_key(rec.id, fmt, sample_rate)
    info = await rt.storage.stat(key)
    if info is None:
        async with _one_builder(key):
            info = await rt.storage.stat(key)  # another request may have just built it
            if info is None:
                info = await _build(rt, rec.storage_key, rec.size, key, fmt, sample_rate)
    return Converted(key, info.size, content_type, filename)


async def _build(
    rt: Runtime, source_key: str, source_size: int, key: str, fmt: str, rate: int
) -> ObjectInfo:
    await anyio.Path(rt.scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=rt.scratch) as work:
        src, dest = Path(work) / "in.mp3", Path(work) / f"out.{fmt}"
        await rt.storage.fetch_to(source_key, src)
        if (await anyio.Path(src).stat()).st_size != source_size:
            raise StorageError(f"{source_key} does not have the recording's size")
        await anyio.to_thread.run_sync(_convert, src, dest, fmt, rate)
        return await rt.storage.put_file(key, dest)


def _convert(src: Path, dest: Path, fmt: str, rate: int) -> None:
    from kallrec.audio.convert import convert_mp3  # the audio stack: loaded on first use

    with _cpu:
        convert_mp3(src, dest, fmt, rate)


@asynccontextmanager
async def _one_builder(key: str) -> AsyncIterator[None]:
    lock, users = _building.get(key, (anyio.Lock(), 0))
    _building[key] = (lock, users + 1)
    try:
        async with lock:
            yield
    finally:
        lock, users = _building[key]
        if users == 1:
            del _building[key]
        else:
            _building[key] = (lock, users - 1)
