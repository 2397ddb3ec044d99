"""`kallrec storage migrate --to URL`: copy every stored object to another backend, verified.

The current storage stays authoritative (the server keeps reading from it) until the operator
switches ``KALLREC_STORAGE_URL``. Every object is copied through a local temp file and read back
from the target: its size and SHA-256 must match the source's, and a recording's MP3 must also
match the ``content_hash`` in the database (so a damaged source is reported, never spread).

Resumable and idempotent: each verified object is written to a journal in the data directory
(one per target URL). A second run skips journaled objects that the target still has at the same
size, without reading them; an object that is already in the target but not journaled is read
back and hashed instead of uploaded again. Run it again right before switching to pick up the
recordings made meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import anyio
from sqlalchemy import select

from kallrec.config import Settings
from kallrec.db import schema as t
from kallrec.db.engine import Database
from kallrec.storage import LocalStorage, MemoryStorage, open_storage
from kallrec.storage.base import ObjectInfo, ObjectMissing, Storage, StorageError
from kallrec.storage.s3 import S3Storage

CONCURRENCY = 4
_HASH_BLOCK = 1024 * 1024


@dataclass
class MigrationReport:
    total: int = 0
    copied: int = 0
    already: int = 0  # verified in the target by an earlier run or a read-back, not uploaded
    vanished: int = 0  # listed, then removed from the source (e.g. staging of a finished job)
    bytes_copied: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# -- listing what a backend holds ----------------------------------------------------------------


async def list_objects(storage: Storage) -> list[ObjectInfo]:
    """Every object of a backend, sorted by key."""
    if isinstance(storage, S3Storage):
        found = [info async for info in storage.list_objects()]
    elif isinstance(storage, LocalStorage):
        found = await anyio.to_thread.run_sync(_walk, storage.root)
    elif isinstance(storage, MemoryStorage):
        found = [ObjectInfo(k, len(v)) for k, v in storage.objects.items()]
    else:
        raise TypeError(f"cannot list {storage!r}")
    return sorted(found, key=lambda info: info.key)


def _walk(root: Path) -> list[ObjectInfo]:
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith("."):  # LocalStorage's in-progress temp files
                continue
            path = Path(dirpath) / name
            out.append(ObjectInfo(path.relative_to(root).as_posix(), path.stat().st_size))
    return out


def recording_hashes(db: Database) -> dict[str, tuple[int, str]]:
    """storage key → (size, SHA-256) of every ready recording's MP3."""
    r = t.recordings
    with db.read() as conn:
        rows = conn.execute(
            select(r.c.storage_key, r.c.size, r.c.content_hash).where(
                r.c.storage_key.is_not(None), r.c.content_hash.is_not(None)
            )
        )
        return {key: (size, digest) for key, size, digest in rows}


# -- the journal ---------------------------------------------------------------------------------


class Journal:
    """Objects verified in one target: JSON lines of {key, size, sha256}, appended and flushed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: dict[str, tuple[int, str]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    self.done[entry["key"]] = (int(entry["size"]), str(entry["sha256"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash: that object is checked again
        self._fh: TextIO | None = None

    def record(self, key: str, size: int, sha256: str) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a")
        self.done[key] = (size, sha256)
        self._fh.write(json.dumps({"key": key, "size": size, "sha256": sha256}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def journal_path(data_dir: Path, target_url: str) -> Path:
    digest = hashlib.sha256(target_url.encode()).hexdigest()[:16]
    return data_dir / "storage-migrations" / f"{digest}.jsonl"


# -- copying -------------------------------------------------------------------------------------


async def _sha256_of_file(path: Path) -> str:
    def run() -> str:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(_HASH_BLOCK):
                digest.update(block)
        return digest.hexdigest()

    return await anyio.to_thread.run_sync(run)


async def _sha256_of_object(storage: Storage, key: str, size: int) -> tuple[int, str]:
    digest, seen = hashlib.sha256(), 0
    async for chunk in storage.iter_range(key, 0, size):
        digest.update(chunk)
        seen += len(chunk)
    return seen, digest.hexdigest()


async def _target_has(target: Storage, key: str, size: int, sha: str) -> bool:
    """The target already holds these exact bytes (an earlier run's copy, not journaled)."""
    there = await target.stat(key)
    if there is None or there.size != size:
        return False
    return await _sha256_of_object(target, key, size) == (size, sha)


async def _copy_one(
    source: Storage,
    target: Storage,
    obj: ObjectInfo,
    expected: tuple[int, str] | None,
    journal: Journal,
    tmp_dir: Path,
) -> str:
    """'copied' or 'already'; raises ValueError (verification) or StorageError."""
    done = journal.done.get(obj.key)
    if done is not None and done[0] == obj.size:
        there = await target.stat(obj.key)
        if there is not None and there.size == obj.size:
            return "already"
    with tempfile.TemporaryDirectory(dir=tmp_dir) as work:
        local = Path(work) / "object"
        await source.fetch_to(obj.key, local)
        size = (await anyio.Path(local).stat()).st_size
        sha = await _sha256_of_file(local)
        if expected is not None and (size, sha) != expected:
            raise ValueError(
                f"the source does not match the recording (size {size}, sha256 {sha[:12]}…; "
                f"expected size {expected[0]}, sha256 {expected[1][:12]}…)"
            )
        outcome = "already"
        if not await _target_has(target, obj.key, size, sha):
            outcome = "copied"
            await target.put_file(obj.key, local)
            back = await _sha256_of_object(target, obj.key, size)
            if back != (size, sha):
                raise ValueError(f"the copy reads back as {back[0]} bytes, sha256 {back[1][:12]}…")
    journal.record(obj.key, size, sha)
    return outcome


async def migrate(
    source: Storage,
    target: Storage,
    *,
    expected: dict[str, tuple[int, str]],
    journal: Journal,
    tmp_dir: Path,
    say: Callable[[str], None] = lambda line: None,
    concurrency: int = CONCURRENCY,
) -> MigrationReport:
    objects = await list_objects(source)
    report = MigrationReport(total=len(objects))
    say(f"{len(objects)} object(s) in the source, {sum(o.size for o in objects)} bytes")
    await anyio.Path(tmp_dir).mkdir(parents=True, exist_ok=True)
    limiter = anyio.Semaphore(concurrency)
    done = 0

    async def one(obj: ObjectInfo) -> None:
        nonlocal done
        async with limiter:
            try:
                outcome = await _copy_one(
                    source, target, obj, expected.get(obj.key), journal, tmp_dir
                )
            except ObjectMissing:
                outcome = "vanished"
                report.vanished += 1
            except (ValueError, StorageError) as exc:
                outcome = f"FAILED: {exc}"
                report.failures.append((obj.key, str(exc)))
            else:
                if outcome == "copied":
                    report.copied += 1
                    report.bytes_copied += obj.size
                else:
                    report.already += 1
            done += 1
            if outcome != "already":
                say(f"[{done}/{report.total}] {outcome} {obj.key} ({obj.size} bytes)")

    async with anyio.create_task_group() as tg:
        for obj in objects:
            tg.start_soon(one, obj)
    return report


async def run_migration(
    settings: Settings, target_url: str, say: Callable[[str], None]
) -> MigrationReport:
    """Copies the storage of ``settings`` to ``target_url`` (the CLI's entry point)."""
    source_url = settings.resolved_storage_url
    if _same_place(source_url, target_url):
        raise ValueError(f"{target_url} is the current storage already.")
    source = open_storage(source_url, settings)
    target = open_storage(target_url, settings)
    db = Database(settings.resolved_database_url)
    try:
        expected = await anyio.to_thread.run_sync(recording_hashes, db)
    finally:
        db.close()
    journal = Journal(journal_path(settings.data_dir, target_url))
    try:
        say(f"Copying {source_url} → {target_url}")
        return await migrate(
            source,
            target,
            expected=expected,
            journal=journal,
            tmp_dir=settings.tmp_dir,
            say=say,
        )
    finally:
        journal.close()


def _same_place(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        if url.startswith("file://"):
            return "file://" + str(Path(url.removeprefix("file://")).resolve())
        return url.rstrip("/")

    return norm(a) == norm(b)
