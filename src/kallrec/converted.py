"""Converted copies of recordings (GET …/download): a cache in storage under a byte quota.

``converted/<recording_id>/<sample_rate>.<ext>`` is kept while it fits under
``KALLREC_CONVERSION_CACHE_MAX_BYTES``; the bookkeeping (sizes, last use, readers) is in the
database, shared by every process and replica (db/conversion_repository.py):

* Before converting, room is reserved: the WAV's exact size, an upper bound for MP3 and Ogg
  (audio/sizes.py), evicting the least recently used conversions that nobody is reading. The
  conversion is written to scratch and stopped if it outgrows its reservation, so the scratch
  file counts against the quota too (on local storage it becomes the kept file by a rename).
* When it does not fit, even after evicting every conversion not being read, it is ``Unkept``:
  converted while it is sent (api/conversion_body.py) and never written anywhere.
* The recording's MP3 is read where it is: in place on local storage, by ranged reads on remote
  storage (storage/thread_file.py), never copied to scratch. So the only disk a conversion uses
  besides the kept files is its reserved output in scratch: the quota bounds both.
* A reader pins the kept file while it sends it (renewed every ``PIN_SECONDS / 3``), so an
  eviction never removes a file under a download. The pin outlives the handler by
  ``RELEASE_HOLD_SECONDS`` (or ``delete_grace_seconds`` if shorter): Granian opens a file handed
  to pathsend after the handler returned; once open, a local file may be unlinked harmlessly.

At most one conversion per key is built in a process at once (the others wait and use it), and at
most one per core converts at a time. MP3 at 8 kHz is the recording itself and is never copied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import tempfile
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio

from kallrec import ids, timeutil
from kallrec.audio import sizes
from kallrec.audio.formats import CONTENT_TYPES
from kallrec.db.conversion_repository import ConversionRepository
from kallrec.db.models import Recording
from kallrec.object_keys import ORIGINAL_RATE, converted_key, is_original
from kallrec.runtime import Runtime
from kallrec.storage import StorageError
from kallrec.storage.thread_file import ThreadFile

log = logging.getLogger("kallrec.converted")
T = TypeVar("T")

# A pin's life; its holder renews it every third of that while it reads or builds.
PIN_SECONDS = 60.0
RELEASE_HOLD_SECONDS = 10.0
# Recordings are 8 kHz MP3s (spec §1).
SOURCE_RATE = ORIGINAL_RATE
# An MP3 that is not the headerless CBR kallrec writes: its decoded length is bounded by its
# duration plus LAME's delay and padding (a few frames).
_SLACK_SAMPLES = 8 * 1152

# One conversion per key in this process; the others wait for it and reuse its result.
_building: dict[str, tuple[anyio.Lock, int]] = {}
# Conversions are CPU work: at most one per core at once, waited for without holding a thread
# (a waiting thread would take a slot of the pool that database calls use). One limiter per
# event loop, as anyio's limiters belong to the loop that made them.
_cpu: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class Kept:
    """A stored object to send: a kept conversion, pinned by ``pin`` for the caller (who must
    ``release`` it), or the recording itself (``pin`` None)."""

    key: str
    size: int
    content_type: str
    filename: str
    pin: str | None


@dataclass(frozen=True)
class Unkept:
    """A conversion the cache has no room for: made while it is sent, kept nowhere."""

    source_key: str
    source_size: int
    fmt: str
    rate: int
    content_type: str
    filename: str
    size: int | None  # known in advance for WAV (Content-Length); else sent chunked


def download_filename(rec: Recording, fmt: str) -> str:
    return f"recording-{rec.session_id}.{fmt}"


def _cache(rt: Runtime) -> ConversionRepository:
    return ConversionRepository(rt.db)


async def find_or_convert(rt: Runtime, rec: Recording, fmt: str, sample_rate: int) -> Kept | Unkept:
    """The stored object for this format and rate (converted and kept first if it fits), or
    how to convert it on the fly.

    Raises StorageError when the storage cannot be read or written.
    """
    assert rec.storage_key is not None and rec.size is not None
    content_type, filename = CONTENT_TYPES[fmt], download_filename(rec, fmt)
    if is_original(fmt, sample_rate):
        original = await rt.storage.stat(rec.storage_key)
        if original is None or original.size != rec.size:
            raise StorageError(f"{rec.storage_key} is missing or incomplete")
        return Kept(rec.storage_key, rec.size, content_type, filename, None)
    key = converted_key(rec.id, fmt, sample_rate)
    kept = await _use(rt, key, content_type, filename)
    if kept is None:
        async with _one_builder(key):
            kept = await _use(rt, key, content_type, filename)  # another request may have built it
            if kept is None:
                return await _convert(rt, rec, fmt, sample_rate, key)
    return kept


async def release(rt: Runtime, kept: Kept, hold: float | None = None) -> None:
    """Ends the caller's pin on ``kept``: evictable after ``hold`` seconds more (by default the
    moment a server may take to open the file after the handler returned)."""
    if hold is None:
        hold = min(rt.settings.delete_grace_seconds, RELEASE_HOLD_SECONDS)
    if kept.pin is not None:
        await _set_pin(rt, kept.pin, hold)


@asynccontextmanager
async def holding(rt: Runtime, kept: Kept) -> AsyncIterator[None]:
    """Keeps ``kept`` pinned while the body runs (a download of any length), released after."""
    try:
        if kept.pin is None:
            yield
        else:
            async with _renewing(rt, kept.pin):
                yield
    finally:
        await release(rt, kept)


async def source(rt: Runtime, key: str, size: int) -> Path | ThreadFile:
    """The recording's MP3 for a conversion thread to read: the stored file itself on local
    storage, else ranged reads of the object. Raises StorageError when a local file is missing
    or not ``size`` bytes long (a remote one fails its reads: the conversion raises then)."""
    local = rt.storage.local_path(key)
    if local is None:
        return ThreadFile(rt.storage, key, size)
    try:
        found = (await anyio.Path(local).stat()).st_size
    except FileNotFoundError:
        raise StorageError(f"{key} is missing") from None
    if found != size:
        raise StorageError(f"{key} does not have the recording's size")
    return Path(local)


def chunks(unkept: Unkept, src: Path | ThreadFile) -> Generator[bytes, None, None]:
    """The conversion's bytes (a generator to advance with ``next_chunk``, closed when done)."""
    from kallrec.audio.convert import converted_chunks  # the audio stack: loaded on first use

    return converted_chunks(src, unkept.fmt, unkept.rate)


async def next_chunk(it: Iterator[bytes]) -> bytes | None:
    """The next block of a conversion, made on a worker thread (one per core at once)."""
    return await _converting(next, it, None)


# -- internals ------------------------------------------------------------------------------------


async def _use(rt: Runtime, key: str, content_type: str, filename: str) -> Kept | None:
    pin, now = ids.new_id("pin"), timeutil.now()
    size = await anyio.to_thread.run_sync(_cache(rt).use, key, pin, now, now + PIN_SECONDS)
    if size is None:
        return None
    kept = Kept(key, size, content_type, filename, pin)
    try:
        info = await rt.storage.stat(key)
    except BaseException:
        await release(rt, kept, 0)
        raise
    if info is None or info.size != size:  # lost or damaged behind kallrec's back: make it again
        log.warning("converted file %s is missing or damaged; converting again", key)
        await anyio.to_thread.run_sync(_cache(rt).forget, key)
        await release(rt, kept, 0)
        return None
    return kept


async def _convert(rt: Runtime, rec: Recording, fmt: str, rate: int, key: str) -> Kept | Unkept:
    assert rec.storage_key is not None and rec.size is not None
    head = await rt.storage.read_range(rec.storage_key, 0, min(4, rec.size))
    exact = sizes.cbr_samples(head, rec.size)
    if exact is None:
        samples = math.ceil((rec.duration or 0.0) * SOURCE_RATE) + _SLACK_SAMPLES
    else:
        samples = exact
    bound = sizes.converted_size_bound(
        fmt, rate, sizes.resampled_samples(samples, SOURCE_RATE, rate)
    )
    content_type, filename = CONTENT_TYPES[fmt], download_filename(rec, fmt)
    unkept = Unkept(
        rec.storage_key,
        rec.size,
        fmt,
        rate,
        content_type,
        filename,
        bound if fmt == "wav" and exact is not None else None,
    )
    pin, now = ids.new_id("pin"), timeutil.now()
    cache = _cache(rt)
    evicted = await anyio.to_thread.run_sync(
        lambda: cache.reserve(
            key,
            rec.id,
            bound,
            rt.settings.conversion_cache_max_bytes,
            pin,
            now,
            now + PIN_SECONDS,
        )
    )
    if evicted is None:
        return unkept
    await _remove(rt, evicted)
    try:
        async with _renewing(rt, pin):
            size = await _build(rt, unkept, key, bound)
    except BaseException:
        with anyio.CancelScope(shield=True):
            # Cancelled as the upload completed, the object would be in no one's quota.
            with contextlib.suppress(StorageError):
                await rt.storage.delete(key)
            await anyio.to_thread.run_sync(cache.abandon, key, pin)
        raise
    if size is None:  # outgrew its reservation (an upper bound that was not one)
        log.warning("conversion %s passed its reserved %d bytes: not kept", key, bound)
        await anyio.to_thread.run_sync(cache.abandon, key, pin)
        return unkept
    if not await anyio.to_thread.run_sync(cache.built, key, size, timeutil.now()):
        # The recording was deleted or expired meanwhile, or the reservation ran out: the
        # stored object belongs to nobody.
        await rt.storage.delete(key)
        return unkept
    return Kept(key, size, content_type, filename, pin)


async def _build(rt: Runtime, unkept: Unkept, key: str, limit: int) -> int | None:
    """Converts into scratch and stores the result under ``key``; its size, or None if it would
    pass ``limit`` bytes (then nothing is stored)."""
    from kallrec.audio.convert import OutputTooLarge, convert_mp3

    src = await source(rt, unkept.source_key, unkept.source_size)
    await anyio.Path(rt.scratch).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=rt.scratch) as work:
        dest = Path(work) / f"out.{unkept.fmt}"
        try:
            await _converting(
                lambda: convert_mp3(src, dest, unkept.fmt, unkept.rate, max_bytes=limit)
            )
        except OutputTooLarge:
            return None
        return (await rt.storage.put_file(key, dest)).size


async def _remove(rt: Runtime, keys: list[str]) -> None:
    """Removes evicted files (handed to the file reaper already: it retries what fails here)."""
    removed = []
    for key in keys:
        try:
            await rt.storage.delete(key)
        except StorageError as exc:
            log.warning("could not remove evicted conversion %s (the reaper will): %s", key, exc)
        else:
            removed.append(key)
    if removed:
        await anyio.to_thread.run_sync(rt.repo.forget_removed_files, removed)


async def _set_pin(rt: Runtime, pin: str, hold: float) -> None:
    until = timeutil.now() + hold
    with anyio.CancelScope(shield=True):  # runs when the download ends, cancelled or not
        try:
            await anyio.to_thread.run_sync(_cache(rt).pin, pin, until)
        except Exception:  # it runs out by itself; a later renewal may get through
            log.warning("could not move conversion pin %s", pin, exc_info=True)


@asynccontextmanager
async def _renewing(rt: Runtime, pin: str) -> AsyncIterator[None]:
    async def renew() -> None:
        while True:
            await asyncio.sleep(PIN_SECONDS / 3)
            await _set_pin(rt, pin, PIN_SECONDS)

    # A plain task, not a task group: a group would wrap the body's errors in an ExceptionGroup.
    task = asyncio.ensure_future(renew())
    try:
        yield
    finally:
        task.cancel()


async def _converting(fn: Callable[..., T], *args: object) -> T:
    loop = asyncio.get_running_loop()
    limiter = _cpu.get(loop)
    if limiter is None:
        limiter = _cpu[loop] = anyio.CapacityLimiter(os.cpu_count() or 1)
    return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)


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
