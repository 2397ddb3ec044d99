"""The file a download is written to before it is trusted: ``<name>.part`` plus its sidecar.

Rules this module enforces (all I/O here is blocking; the async engine calls it in a thread):

* Bytes go only to ``<name>.part`` in the target directory. The final name appears only by an
  atomic ``os.replace`` after the part file was verified (size, and SHA-256 when the ETag is a
  quoted SHA-256) and fsync'd; the directory is fsync'd after the rename.
* ``<name>.part.json`` (the sidecar) records which version of the recording the part holds (its
  ETag / Last-Modified / size). It is written before the first byte of that version, so a later
  run resumes only bytes of the same version (``If-Range`` with that validator), and a part with
  no sidecar, a sidecar for another recording, or another version is started over.
* The part file is locked (``flock``) while open, so two downloads never write the same file.
* The SHA-256 is computed while writing (the existing prefix is hashed once on resume), so
  verification costs no second read. Memory stays bounded by the chunk size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from kallrec.client._errors import DownloadError, IntegrityError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    # Windows: no advisory locks (PartFile checks for None). mypy checks the POSIX branch,
    # where the name is a module.
    fcntl = None  # type: ignore[assignment]

__all__ = ["PartFile", "Validator", "file_is_complete", "sha256_from_etag"]

_SHA256_ETAG = re.compile(r'"([0-9a-fA-F]{64})"')
_READ_CHUNK = 1024 * 1024
SIDECAR_VERSION = 1


def sha256_from_etag(etag: str | None) -> str | None:
    """The hex digest when the ETag is a strong, quoted SHA-256 (kallrec's), else None."""
    if etag is None:
        return None
    match = _SHA256_ETAG.fullmatch(etag.strip())
    return match.group(1).lower() if match else None


@dataclass(frozen=True)
class Validator:
    """Which version of the recording some bytes belong to."""

    etag: str | None = None
    last_modified: str | None = None
    size: int | None = None

    @property
    def sha256(self) -> str | None:
        return sha256_from_etag(self.etag)

    @property
    def if_range(self) -> str | None:
        """The ``If-Range`` value that makes a resume safe, or None if none does."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    def same_version(self, other: Validator) -> bool:
        """False when the two certainly describe different content."""
        if self.etag and other.etag:
            return self.etag == other.etag
        if self.last_modified and other.last_modified:
            return self.last_modified == other.last_modified and (
                self.size is None or other.size is None or self.size == other.size
            )
        return False


def _hash_file(fh: IO[bytes], length: int) -> Any:
    digest = hashlib.sha256()
    fh.seek(0)
    remaining = length
    while remaining > 0:
        chunk = fh.read(min(_READ_CHUNK, remaining))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    return digest


def file_is_complete(path: Path, expected: Validator) -> bool:
    """Whether ``path`` already holds this version: size equal, and the SHA-256 when known.

    Without a size and without a hash there is nothing to compare, so the answer is False.
    """
    if expected.size is None and expected.sha256 is None:
        return False
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if expected.size is not None and size != expected.size:
                return False
            if expected.sha256 is not None:
                return bool(_hash_file(fh, size).hexdigest() == expected.sha256)
            return True
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return False


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class PartFile:
    """``<final>.part`` being written for one recording."""

    def __init__(self, final: Path, recording_id: str) -> None:
        self.final = final
        self.part = final.with_name(final.name + ".part")
        self.sidecar = final.with_name(final.name + ".part.json")
        self.recording_id = recording_id
        self.validator = Validator()
        self.offset = 0
        self._fh: IO[bytes] | None = None
        self._digest: Any = hashlib.sha256()

    # -- opening ---------------------------------------------------------------------------

    def open(self, remote: Validator) -> int:
        """Open and lock the part file; returns the offset to resume from (0: from scratch)."""
        self.final.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.part, os.O_RDWR | os.O_CREAT, 0o644)
        fh = os.fdopen(fd, "r+b")
        if fcntl is not None:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise DownloadError(
                    f"{self.part} is being written by another download; not touching it."
                ) from None
        self._fh = fh
        saved = self._read_sidecar()
        on_disk = os.fstat(fh.fileno()).st_size
        resumable = (
            saved is not None
            and on_disk > 0
            and saved.if_range is not None
            and saved.same_version(remote)
            and (remote.size is None or on_disk <= remote.size)
        )
        if saved is not None and resumable:
            self.validator = saved
            self._digest = _hash_file(fh, on_disk)
            self.offset = on_disk
            fh.seek(on_disk)
        else:
            self.reset(remote)
        return self.offset

    def _read_sidecar(self) -> Validator | None:
        try:
            data = json.loads(self.sidecar.read_text())
        except (OSError, ValueError):
            return None
        if (
            not isinstance(data, dict)
            or data.get("version") != SIDECAR_VERSION
            or data.get("recording_id") != self.recording_id
        ):
            return None
        etag, modified, size = data.get("etag"), data.get("last_modified"), data.get("size")
        return Validator(
            etag=etag if isinstance(etag, str) else None,
            last_modified=modified if isinstance(modified, str) else None,
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        )

    def _write_sidecar(self) -> None:
        payload = {"version": SIDECAR_VERSION, "recording_id": self.recording_id}
        payload.update(asdict(self.validator))
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, self.sidecar)

    # -- writing ---------------------------------------------------------------------------

    @property
    def fh(self) -> IO[bytes]:
        if self._fh is None:
            raise DownloadError(f"{self.part} is not open.")
        return self._fh

    def reset(self, validator: Validator) -> None:
        """Start over: empty the part file, then record which version it will hold."""
        fh = self.fh
        fh.seek(0)
        fh.truncate(0)
        fh.flush()
        self.offset = 0
        self._digest = hashlib.sha256()
        self.validator = validator
        self._write_sidecar()

    def adopt(self, validator: Validator) -> None:
        """The server described the version more precisely (e.g. a 200's headers)."""
        if validator != self.validator:
            self.validator = validator
            self._write_sidecar()

    def write(self, chunk: bytes) -> None:
        self.fh.write(chunk)
        self._digest.update(chunk)
        self.offset += len(chunk)

    def flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    # -- finishing -------------------------------------------------------------------------

    def verify(self, expected: Validator) -> str:
        """Flush, fsync and check the part against ``expected``; returns its SHA-256 hex."""
        fh = self.fh
        fh.flush()
        os.fsync(fh.fileno())
        size = os.fstat(fh.fileno()).st_size
        if size != self.offset:  # something else wrote to the file: do not trust the digest
            self._digest = _hash_file(fh, size)
            self.offset = size
        if expected.size is None and expected.sha256 is None:
            raise IntegrityError(
                "The server sent neither Content-Length nor a content-hash ETag: "
                "a truncated file could not be told from a whole one.",
                expected=None,
                actual=size,
            )
        if expected.size is not None and size != expected.size:
            raise IntegrityError(
                f"Received {size} bytes, expected {expected.size}.",
                expected=expected.size,
                actual=size,
            )
        digest = str(self._digest.hexdigest())
        if expected.sha256 is not None and digest != expected.sha256:
            raise IntegrityError(
                f"SHA-256 {digest} does not match the ETag's {expected.sha256}.",
                expected=expected.sha256,
                actual=digest,
            )
        return digest

    def commit(self) -> None:
        """Move the verified part to the final name (atomically) and forget the sidecar."""
        fh = self.fh
        fh.flush()
        os.fsync(fh.fileno())
        os.replace(self.part, self.final)
        self.close()
        _fsync_dir(self.final.parent)
        self.sidecar.unlink(missing_ok=True)

    def close(self) -> None:
        """Close (and unlock), keeping the part and sidecar for a later resume."""
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.flush()
            fh.close()

    def discard(self) -> None:
        """Close and delete the part and the sidecar (their bytes are known to be bad)."""
        # Unlink while still holding the lock, so no other download adopts the bad bytes.
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)
        self.close()
