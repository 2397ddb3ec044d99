"""The download engine: one recording's audio to a verified file, sync and async.

The steps, each a rule of the issue:

1. **Probe** with ``HEAD`` (a ``GET`` of ``bytes=0-0`` if ``HEAD`` fails, which also fetches the
   error envelope a ``HEAD`` cannot carry): size, ETag, Last-Modified, file name.
   ``409 recording_not_ready`` is waited out (``Retry-After``) until ``wait_timeout``;
   429/5xx/connection errors are retried with backoff (``RetryPolicy``); anything else raises.
2. **Name** the file: the explicit path, or the sanitised ``Content-Disposition`` name (plus a
   suffix for bulk downloads) in the target directory. A file already there that matches (size,
   and SHA-256 when the ETag is one) is **skipped**.
3. **Fetch** into ``<name>.part`` (see ``_partfile``): a part left by an earlier run of the same
   version is resumed with ``Range: bytes=N-`` + ``If-Range: <its ETag>``; a ``200`` instead of a
   ``206`` means the recording changed, and the part starts over. The body is streamed chunk by
   chunk (memory bounded whatever the size); a cut, reset or stall (read timeout) resumes from the
   bytes on disk. An attempt that got further into the file than any before resets the retry
   count (so a connection that keeps dropping still finishes, and one that cannot make progress
   still gives up).
4. **Verify** size and SHA-256, fsync, rename atomically to the final name. A verification
   failure starts over once from zero (a resumed prefix could be stale), then raises
   ``IntegrityError``. A failure never leaves anything under the final name; the part stays for a
   later resume unless its bytes are known to be bad.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import anyio
import httpx

from kallrec.client._errors import (
    MAX_ERROR_BODY,
    APIConnectionError,
    DownloadError,
    IntegrityError,
    KallrecError,
    RecordingNotReadyError,
    connection_error,
    error_from_response,
)
from kallrec.client._filenames import filename_from_disposition, safe_filename, with_suffix
from kallrec.client._partfile import PartFile, Validator, file_is_complete
from kallrec.client._retry import RetryPolicy

__all__ = [
    "DEFAULT_WAIT_TIMEOUT",
    "AsyncDownloader",
    "DownloadItem",
    "DownloadProgress",
    "DownloadResult",
    "Downloader",
    "ProgressCallback",
    "ResultCallback",
]

DEFAULT_WAIT_TIMEOUT = 120.0
DEFAULT_NOT_READY_WAIT = 2.0
# A verification failure after a resume may mean the prefix was stale: start over this often.
MAX_RESTARTS = 1
RETRYABLE_PROBE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

Phase = Literal["waiting", "retrying", "downloading", "verifying", "done", "skipped"]
Status = Literal["downloaded", "resumed", "skipped", "failed"]


@dataclass(frozen=True)
class DownloadProgress:
    """A snapshot passed to ``on_progress`` (after every chunk, and on every state change)."""

    recording_id: str
    phase: Phase
    path: Path | None = None
    received: int = 0  # bytes of the file present so far (resumed prefix included)
    total: int | None = None
    message: str | None = None  # why we are waiting or retrying


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class DownloadResult:
    recording_id: str
    status: Status
    path: Path | None = None
    size: int | None = None
    sha256: str | None = None  # of the file, when it was hashed
    bytes_transferred: int = 0  # body bytes received over the network by this call
    resumed_from: int = 0  # bytes reused from a part file left by an earlier run
    error: KallrecError | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


ResultCallback = Callable[[DownloadResult], None]


@dataclass(frozen=True)
class DownloadItem:
    """One file of a bulk download: the recording and the suffix its file name gets."""

    recording_id: str
    name_suffix: str = ""


def audio_path(recording_id: str) -> str:
    return f"/v1/recordings/{quote(recording_id, safe='')}/audio"


@dataclass(frozen=True)
class _Remote:
    validator: Validator
    filename: str | None


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """``bytes a-b/total`` → (a, b inclusive, total or None for ``*``)."""
    if not value:
        return None
    unit, _, rest = value.strip().partition(" ")
    span, _, total = rest.partition("/")
    first, _, last = span.partition("-")
    try:
        if unit.lower() != "bytes":
            return None
        return int(first), int(last), None if total.strip() == "*" else int(total)
    except ValueError:
        return None


def _int_header(response: httpx.Response, name: str) -> int | None:
    raw = response.headers.get(name)
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


def _remote_from(response: httpx.Response) -> _Remote:
    size = None
    if response.status_code == 206:
        parsed = _parse_content_range(response.headers.get("content-range"))
        size = parsed[2] if parsed else None
    else:
        size = _int_header(response, "content-length")
    return _Remote(
        Validator(
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            size=size,
        ),
        filename_from_disposition(response.headers.get("content-disposition")),
    )


def _check_encoding(response: httpx.Response) -> None:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise DownloadError(
            f"The server sent the audio with Content-Encoding {encoding!r} although identity "
            "was asked for; its bytes cannot be checked against Content-Length."
        )


class _Mismatch(Exception):
    """A 206 that does not continue our part: start over."""


def _accept(response: httpx.Response, part: PartFile, expected: Validator) -> Validator:
    """Check a 2xx answer against the part; returns what the finished file must match."""
    _check_encoding(response)
    if response.status_code == 206:
        if response.headers.get("content-type", "").lower().startswith("multipart/"):
            raise _Mismatch("multipart answer to a single range")
        parsed = _parse_content_range(response.headers.get("content-range"))
        if parsed is None or parsed[0] != part.offset:
            raise _Mismatch(f"Content-Range {response.headers.get('content-range')!r}")
        total = parsed[2]
        if expected.size is not None and total is not None and total != expected.size:
            raise _Mismatch("the size changed")
        etag = response.headers.get("etag")
        if etag and part.validator.etag and etag != part.validator.etag:
            raise _Mismatch("the ETag changed")
        if expected.size is None and total is not None:
            expected = replace(expected, size=total)
        return expected
    if response.status_code == 200:
        fresh = _remote_from(response).validator
        if part.offset > 0:
            part.reset(fresh)  # Range not honoured (If-Range mismatch: the recording changed)
        else:
            part.adopt(fresh)
        return fresh
    raise DownloadError(f"Unexpected HTTP {response.status_code} for the audio.")


def _target(
    recording_id: str,
    remote: _Remote,
    path: Path | None,
    directory: Path | None,
    suffix: str,
) -> Path:
    if path is not None and not path.is_dir():
        return path
    folder = path if path is not None else (directory or Path.cwd())
    fallback = safe_filename(f"{recording_id}.mp3", "recording.mp3")
    name = safe_filename(remote.filename, fallback)
    return folder / safe_filename(with_suffix(name, suffix), fallback)


class PathClaims:
    """Final paths taken within one bulk download; a second claimant gets ``-<id>`` added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[Path, str] = {}

    def claim(self, path: Path, recording_id: str) -> Path:
        with self._lock:
            candidate = path
            owner = self._owners.get(candidate.absolute())
            if owner is not None and owner != recording_id:
                candidate = path.with_name(
                    safe_filename(with_suffix(path.name, f"-{recording_id}"), path.name)
                )
            self._owners.setdefault(candidate.absolute(), recording_id)
            return candidate


class _Patience:
    """Counts failures and the processing wait; decides each wait or raises."""

    def __init__(self, retry: RetryPolicy, wait_timeout: float) -> None:
        self.retry = retry
        self.wait_timeout = wait_timeout
        self.deadline = time.monotonic() + wait_timeout
        self.waited = 0.0  # slept for processing so far (the clock may not move in tests)
        self.failures = 0

    def progressed(self) -> None:
        self.failures = 0

    def delay(self, error: KallrecError, *, retryable: bool = False) -> tuple[float, Phase]:
        if isinstance(error, RecordingNotReadyError):
            remaining = min(self.deadline - time.monotonic(), self.wait_timeout - self.waited)
            if remaining <= 0:
                raise RecordingNotReadyError(
                    f"{error.message} Still processing after waiting {self.wait_timeout:g} s.",
                    status=error.status,
                    type=error.type,
                    code=error.code,
                    param=error.param,
                    request_id=error.request_id,
                    retry_after=error.retry_after,
                    body=error.body,
                    headers=error.headers,
                ) from error
            wait = error.retry_after if error.retry_after is not None else DEFAULT_NOT_READY_WAIT
            wait = min(max(wait, 0.1), remaining)  # never spin on "Retry-After: 0"
            self.waited += wait
            return wait, "waiting"
        self.failures += 1
        if retryable:
            delay = self.retry.delay(self.failures)
        else:
            delay = self.retry.next_delay(self.failures, error)
        if delay is None:
            raise error
        return delay, "retrying"


def _local_error(path: Path, exc: OSError) -> DownloadError:
    return DownloadError(f"Cannot write {path}: {exc.strerror or exc}")


def _describe(error: KallrecError) -> str:
    return str(error)


def _finished(recording_id: str, part: PartFile, digest: str, transferred: int) -> DownloadResult:
    # Bytes of the file that did not come over the network now came from an earlier run's part.
    kept = part.offset - transferred if transferred < part.offset else 0
    return DownloadResult(
        recording_id,
        "resumed" if kept else "downloaded",
        part.final,
        part.offset,
        digest,
        transferred,
        kept,
    )


class _Engine:
    """What the sync and async engines share: configuration and progress reporting."""

    def __init__(
        self,
        headers: Mapping[str, str],
        retry: RetryPolicy,
    ) -> None:
        self.headers = dict(headers)
        self.retry = retry

    def _h(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        return {**self.headers, "Accept-Encoding": "identity", **(extra or {})}

    @staticmethod
    def _emit(
        callback: ProgressCallback | None,
        recording_id: str,
        phase: Phase,
        path: Path | None = None,
        received: int = 0,
        total: int | None = None,
        message: str | None = None,
    ) -> None:
        if callback is not None:
            callback(DownloadProgress(recording_id, phase, path, received, total, message))


def _read_error_body(response: httpx.Response) -> bytes:
    body = bytearray()
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass
    return bytes(body[:MAX_ERROR_BODY])


async def _aread_error_body(response: httpx.Response) -> bytes:
    body = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= MAX_ERROR_BODY:
                break
    except httpx.HTTPError:
        pass
    return bytes(body[:MAX_ERROR_BODY])


def _probe_error(response: httpx.Response) -> KallrecError | None:
    """A HEAD failure that needs no GET to explain it (retryable statuses), else None."""
    if response.status_code in RETRYABLE_PROBE_STATUSES:
        return error_from_response(response, b"")
    return None


class Downloader(_Engine):
    """Sync engine over an ``httpx.Client`` (whose base URL is the API's)."""

    def __init__(self, http: httpx.Client, headers: Mapping[str, str], retry: RetryPolicy) -> None:
        super().__init__(headers, retry)
        self.http = http

    def download(
        self,
        recording_id: str,
        *,
        path: str | os.PathLike[str] | None = None,
        directory: str | os.PathLike[str] | None = None,
        name_suffix: str = "",
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
        claims: PathClaims | None = None,
    ) -> DownloadResult:
        patience = _Patience(self.retry, wait_timeout)
        url = audio_path(recording_id)
        remote = self._probe(url, recording_id, patience, on_progress)
        final = _target(
            recording_id,
            remote,
            Path(path) if path is not None else None,
            Path(directory) if directory is not None else None,
            name_suffix,
        )
        if claims is not None:
            final = claims.claim(final, recording_id)
        if skip_existing and file_is_complete(final, remote.validator):
            size = remote.validator.size or final.stat().st_size
            self._emit(on_progress, recording_id, "skipped", final, size, size)
            return DownloadResult(recording_id, "skipped", final, size, remote.validator.sha256)
        part = PartFile(final, recording_id)
        try:
            part.open(remote.validator)
            return self._fetch(url, recording_id, part, remote.validator, patience, on_progress)
        except OSError as exc:
            raise _local_error(final, exc) from exc
        finally:
            part.close()

    def _sleep(
        self,
        delay: float,
        phase: Phase,
        error: KallrecError,
        on_progress: ProgressCallback | None,
        recording_id: str,
        part: PartFile | None = None,
        total: int | None = None,
    ) -> None:
        path = part.final if part else None
        received = part.offset if part else 0
        message = f"{_describe(error)}; again in {delay:.1f} s"
        self._emit(on_progress, recording_id, phase, path, received, total, message)
        self.retry.sleep(delay)

    def _probe(
        self,
        url: str,
        recording_id: str,
        patience: _Patience,
        on_progress: ProgressCallback | None,
    ) -> _Remote:
        while True:
            from_head = False
            try:
                head = self.http.head(url, headers=self._h(), follow_redirects=True)
                if head.is_success:
                    return _remote_from(head)
                error = _probe_error(head)
                from_head = error is not None
            except httpx.TransportError as exc:
                error = connection_error(exc)
            if error is None:
                probed = self._get_probe(url)
                if isinstance(probed, _Remote):
                    return probed
                error = probed
            try:
                delay, phase = patience.delay(error)
            except KallrecError:
                if not from_head:
                    raise
                # Giving up: a HEAD error has no body, so let the server explain with a GET.
                probed = self._get_probe(url)
                if isinstance(probed, _Remote):
                    return probed
                raise probed from None
            self._sleep(delay, phase, error, on_progress, recording_id)

    def _get_probe(self, url: str) -> _Remote | KallrecError:
        """``GET bytes=0-0``: for servers without HEAD, and for the error envelope."""
        try:
            with self.http.stream(
                "GET", url, headers=self._h({"Range": "bytes=0-0"}), follow_redirects=True
            ) as response:
                if response.is_success:
                    return _remote_from(response)
                return error_from_response(response, _read_error_body(response))
        except httpx.TransportError as exc:
            return connection_error(exc)

    def _fetch(
        self,
        url: str,
        recording_id: str,
        part: PartFile,
        expected: Validator,
        patience: _Patience,
        on_progress: ProgressCallback | None,
    ) -> DownloadResult:
        restarts = transferred = 0
        best = part.offset
        while True:
            size = expected.size
            if size is None or part.offset < size:
                headers: dict[str, str] = {}
                if part.offset > 0:
                    if_range = part.validator.if_range
                    if if_range is None:
                        part.reset(expected)
                    else:
                        headers = {"Range": f"bytes={part.offset}-", "If-Range": if_range}
                start = part.offset
                error: KallrecError | None = None
                retryable = False
                try:
                    with self.http.stream(
                        "GET", url, headers=self._h(headers), follow_redirects=True
                    ) as response:
                        if not response.is_success:
                            error = error_from_response(response, _read_error_body(response))
                            if response.status_code == 416:
                                part.reset(expected)
                                retryable = True
                        else:
                            try:
                                expected = _accept(response, part, expected)
                            except _Mismatch as exc:
                                part.reset(expected)
                                error = APIConnectionError(
                                    f"The server's range answer does not continue the file "
                                    f"({exc}); starting over."
                                )
                                retryable = True
                            else:
                                self._emit(
                                    on_progress,
                                    recording_id,
                                    "downloading",
                                    part.final,
                                    part.offset,
                                    expected.size,
                                )
                                for chunk in response.iter_bytes():
                                    part.write(chunk)
                                    transferred += len(chunk)
                                    self._emit(
                                        on_progress,
                                        recording_id,
                                        "downloading",
                                        part.final,
                                        part.offset,
                                        expected.size,
                                    )
                except httpx.TransportError as exc:
                    part.flush()
                    error = connection_error(exc)
                if part.offset > best:  # new bytes, not bytes fetched again after a restart
                    best = part.offset
                    patience.progressed()
                if error is None and expected.size is not None and part.offset < expected.size:
                    if part.offset > start:
                        continue  # a shorter range than asked for: ask for the rest
                    error = APIConnectionError("The server ended the body without sending bytes.")
                    retryable = True
                if error is not None:
                    delay, phase = patience.delay(error, retryable=retryable)
                    self._sleep(delay, phase, error, on_progress, recording_id, part, expected.size)
                    continue
            elif part.offset > size:
                part.reset(expected)
                continue
            self._emit(
                on_progress, recording_id, "verifying", part.final, part.offset, expected.size
            )
            try:
                digest = part.verify(expected)
            except IntegrityError:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    part.discard()
                    raise
                part.reset(expected)
                continue
            part.commit()
            self._emit(on_progress, recording_id, "done", part.final, part.offset, part.offset)
            return _finished(recording_id, part, digest, transferred)

    def download_many(
        self,
        items: list[DownloadItem],
        *,
        directory: str | os.PathLike[str] | None = None,
        concurrency: int = 4,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> list[DownloadResult]:
        claims = PathClaims()

        def one(item: DownloadItem) -> DownloadResult:
            result = attempt(item)
            if on_result is not None:
                on_result(result)
            return result

        def attempt(item: DownloadItem) -> DownloadResult:
            try:
                return self.download(
                    item.recording_id,
                    directory=directory,
                    name_suffix=item.name_suffix,
                    wait_timeout=wait_timeout,
                    skip_existing=skip_existing,
                    on_progress=on_progress,
                    claims=claims,
                )
            except KallrecError as exc:
                return DownloadResult(item.recording_id, "failed", error=exc)
            except OSError as exc:
                return DownloadResult(item.recording_id, "failed", error=DownloadError(str(exc)))

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return list(pool.map(one, items))


class AsyncDownloader(_Engine):
    """Async engine over an ``httpx.AsyncClient``; file I/O runs in worker threads."""

    def __init__(
        self, http: httpx.AsyncClient, headers: Mapping[str, str], retry: RetryPolicy
    ) -> None:
        super().__init__(headers, retry)
        self.http = http

    async def download(
        self,
        recording_id: str,
        *,
        path: str | os.PathLike[str] | None = None,
        directory: str | os.PathLike[str] | None = None,
        name_suffix: str = "",
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
        claims: PathClaims | None = None,
    ) -> DownloadResult:
        patience = _Patience(self.retry, wait_timeout)
        url = audio_path(recording_id)
        remote = await self._probe(url, recording_id, patience, on_progress)
        final = _target(
            recording_id,
            remote,
            Path(path) if path is not None else None,
            Path(directory) if directory is not None else None,
            name_suffix,
        )
        if claims is not None:
            final = claims.claim(final, recording_id)
        if skip_existing and await anyio.to_thread.run_sync(
            file_is_complete, final, remote.validator
        ):
            size = remote.validator.size or (await anyio.Path(final).stat()).st_size
            self._emit(on_progress, recording_id, "skipped", final, size, size)
            return DownloadResult(recording_id, "skipped", final, size, remote.validator.sha256)
        part = PartFile(final, recording_id)
        try:
            await anyio.to_thread.run_sync(part.open, remote.validator)
            return await self._fetch(
                url, recording_id, part, remote.validator, patience, on_progress
            )
        except OSError as exc:
            raise _local_error(final, exc) from exc
        finally:
            part.close()

    async def _sleep(
        self,
        delay: float,
        phase: Phase,
        error: KallrecError,
        on_progress: ProgressCallback | None,
        recording_id: str,
        part: PartFile | None = None,
        total: int | None = None,
    ) -> None:
        path = part.final if part else None
        received = part.offset if part else 0
        message = f"{_describe(error)}; again in {delay:.1f} s"
        self._emit(on_progress, recording_id, phase, path, received, total, message)
        await self.retry.async_sleep(delay)

    async def _probe(
        self,
        url: str,
        recording_id: str,
        patience: _Patience,
        on_progress: ProgressCallback | None,
    ) -> _Remote:
        while True:
            from_head = False
            try:
                head = await self.http.head(url, headers=self._h(), follow_redirects=True)
                if head.is_success:
                    return _remote_from(head)
                error = _probe_error(head)
                from_head = error is not None
            except httpx.TransportError as exc:
                error = connection_error(exc)
            if error is None:
                probed = await self._get_probe(url)
                if isinstance(probed, _Remote):
                    return probed
                error = probed
            try:
                delay, phase = patience.delay(error)
            except KallrecError:
                if not from_head:
                    raise
                probed = await self._get_probe(url)
                if isinstance(probed, _Remote):
                    return probed
                raise probed from None
            await self._sleep(delay, phase, error, on_progress, recording_id)

    async def _get_probe(self, url: str) -> _Remote | KallrecError:
        try:
            async with self.http.stream(
                "GET", url, headers=self._h({"Range": "bytes=0-0"}), follow_redirects=True
            ) as response:
                if response.is_success:
                    return _remote_from(response)
                return error_from_response(response, await _aread_error_body(response))
        except httpx.TransportError as exc:
            return connection_error(exc)

    async def _fetch(
        self,
        url: str,
        recording_id: str,
        part: PartFile,
        expected: Validator,
        patience: _Patience,
        on_progress: ProgressCallback | None,
    ) -> DownloadResult:
        restarts = transferred = 0
        best = part.offset
        run = anyio.to_thread.run_sync
        while True:
            size = expected.size
            if size is None or part.offset < size:
                headers: dict[str, str] = {}
                if part.offset > 0:
                    if_range = part.validator.if_range
                    if if_range is None:
                        await run(part.reset, expected)
                    else:
                        headers = {"Range": f"bytes={part.offset}-", "If-Range": if_range}
                start = part.offset
                error: KallrecError | None = None
                retryable = False
                try:
                    async with self.http.stream(
                        "GET", url, headers=self._h(headers), follow_redirects=True
                    ) as response:
                        if not response.is_success:
                            body = await _aread_error_body(response)
                            error = error_from_response(response, body)
                            if response.status_code == 416:
                                await run(part.reset, expected)
                                retryable = True
                        else:
                            try:
                                expected = await run(_accept, response, part, expected)
                            except _Mismatch as exc:
                                await run(part.reset, expected)
                                error = APIConnectionError(
                                    f"The server's range answer does not continue the file "
                                    f"({exc}); starting over."
                                )
                                retryable = True
                            else:
                                self._emit(
                                    on_progress,
                                    recording_id,
                                    "downloading",
                                    part.final,
                                    part.offset,
                                    expected.size,
                                )
                                async for chunk in response.aiter_bytes():
                                    await run(part.write, chunk)
                                    transferred += len(chunk)
                                    self._emit(
                                        on_progress,
                                        recording_id,
                                        "downloading",
                                        part.final,
                                        part.offset,
                                        expected.size,
                                    )
                except httpx.TransportError as exc:
                    await run(part.flush)
                    error = connection_error(exc)
                if part.offset > best:  # new bytes, not bytes fetched again after a restart
                    best = part.offset
                    patience.progressed()
                if error is None and expected.size is not None and part.offset < expected.size:
                    if part.offset > start:
                        continue
                    error = APIConnectionError("The server ended the body without sending bytes.")
                    retryable = True
                if error is not None:
                    delay, phase = patience.delay(error, retryable=retryable)
                    await self._sleep(
                        delay, phase, error, on_progress, recording_id, part, expected.size
                    )
                    continue
            elif part.offset > size:
                await run(part.reset, expected)
                continue
            self._emit(
                on_progress, recording_id, "verifying", part.final, part.offset, expected.size
            )
            try:
                digest = await run(part.verify, expected)
            except IntegrityError:
                restarts += 1
                if restarts > MAX_RESTARTS:
                    await run(part.discard)
                    raise
                await run(part.reset, expected)
                continue
            await run(part.commit)
            self._emit(on_progress, recording_id, "done", part.final, part.offset, part.offset)
            return _finished(recording_id, part, digest, transferred)

    async def download_many(
        self,
        items: list[DownloadItem],
        *,
        directory: str | os.PathLike[str] | None = None,
        concurrency: int = 4,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> list[DownloadResult]:
        claims = PathClaims()
        results: list[DownloadResult | None] = [None] * len(items)
        limiter = anyio.Semaphore(max(1, concurrency))

        async def one(index: int, item: DownloadItem) -> None:
            async with limiter:
                try:
                    result = await self.download(
                        item.recording_id,
                        directory=directory,
                        name_suffix=item.name_suffix,
                        wait_timeout=wait_timeout,
                        skip_existing=skip_existing,
                        on_progress=on_progress,
                        claims=claims,
                    )
                except KallrecError as exc:
                    result = DownloadResult(item.recording_id, "failed", error=exc)
                except OSError as exc:
                    result = DownloadResult(
                        item.recording_id, "failed", error=DownloadError(str(exc))
                    )
            results[index] = result
            if on_result is not None:
                on_result(result)

        async with anyio.create_task_group() as tg:
            for index, item in enumerate(items):
                tg.start_soon(one, index, item)
        return [r for r in results if r is not None]
