"""``Kallrec`` (sync) and ``AsyncKallrec`` (async): the whole v1 API of the spec, over httpx.

    client = Kallrec()                       # KALLREC_API_KEY, KALLREC_BASE_URL from the env
    rec = client.recordings.retrieve("rec_…")
    for rec in client.recordings.list(status="ready", created_gte="2026-03-01"):
        client.recordings.download(rec.id, directory="archive/")

Every call retries connection failures, 429 and 5xx per the ``RetryPolicy`` (POSTs that create
things carry an automatic ``Idempotency-Key``, so a retry never creates twice) and raises the
``_errors`` exception for any other non-2xx answer.
"""

from __future__ import annotations

import builtins
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar
from urllib.parse import quote

import httpx

from kallrec.client._download import (
    DEFAULT_WAIT_TIMEOUT,
    AsyncDownloader,
    Downloader,
    DownloadItem,
    DownloadResult,
    ProgressCallback,
    ResultCallback,
)
from kallrec.client._errors import (
    MAX_ERROR_BODY,
    APIError,
    ConfigurationError,
    DownloadError,
    KallrecError,
    RecordingNotReadyError,
    connection_error,
    error_from_response,
)
from kallrec.client._filenames import safe_filename
from kallrec.client._models import (
    DeletedObject,
    MetadataValue,
    Recording,
    Session,
    WebhookEndpoint,
)
from kallrec.client._pagination import AsyncPage, AsyncPager, HasId, SyncPage
from kallrec.client._retry import RetryPolicy

__all__ = ["DEFAULT_BASE_URL", "AsyncKallrec", "Kallrec", "bulk_items"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
M = TypeVar("M", bound=HasId)
FileInput = str | os.PathLike[str] | bytes | IO[bytes]
TimeInput = datetime | str | int | float


def _noop() -> None:
    pass


def _version() -> str:
    try:
        return importlib_metadata.version("kallrec")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover
        return "0"


USER_AGENT = f"kallrec-python/{_version()}"


def _seg(value: str) -> str:
    """An id as one URL path segment (never a way out of the path)."""
    if not value:
        raise ValueError("An object id must not be empty.")
    return quote(value, safe="")


def _time_param(value: TimeInput | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value)


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _page_params(
    limit: int | None, starting_after: str | None, ending_before: str | None
) -> dict[str, Any]:
    return _clean(
        {"limit": limit, "starting_after": starting_after, "ending_before": ending_before}
    )


def _session_body(
    mode: str,
    source_language: str | None,
    target_language: str | None,
    provider: str | None,
    recording: Mapping[str, Any] | None,
    metadata: Mapping[str, MetadataValue] | None,
    routing: Mapping[str, Any] | None = None,
    ai_agent: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    if provider is not None:
        # A session answers with `provider` (the carrier); it is asked for in `routing`.
        if routing is not None:
            raise ConfigurationError("Give routing or provider, not both.")
        routing = {"type": provider}
    body: dict[str, Any] = {"mode": mode}
    body.update(
        _clean(
            {
                "source_language": source_language,
                "target_language": target_language,
                "routing": dict(routing) if routing is not None else None,
                "recording": dict(recording) if recording is not None else None,
                "metadata": dict(metadata) if metadata is not None else None,
                "ai_agent": dict(ai_agent) if ai_agent is not None else None,
            }
        )
    )
    return body


def _session_filters(
    status: str | None, created_gte: TimeInput | None, created_lt: TimeInput | None
) -> dict[str, Any]:
    """The filters every list of sessions or recordings takes."""
    return _clean(
        {
            "status": status,
            "created[gte]": _time_param(created_gte),
            "created[lt]": _time_param(created_lt),
        }
    )


def _recording_filters(
    session_id: str | None,
    channel: str | None,
    status: str | None,
    created_gte: TimeInput | None,
    created_lt: TimeInput | None,
) -> dict[str, Any]:
    return {
        **_clean({"session_id": session_id, "channel": channel}),
        **_session_filters(status, created_gte, created_lt),
    }


def _import_fields(
    session_id: str | None, channel: str | None, metadata: Mapping[str, str] | None
) -> dict[str, str]:
    fields = _clean({"session_id": session_id, "channel": channel})
    for key, value in (metadata or {}).items():
        fields[f"metadata[{key}]"] = str(value)
    return fields


class _Upload:
    """A file to import, re-readable across retries when that is possible."""

    def __init__(self, file: FileInput, filename: str | None) -> None:
        self.file = file
        if isinstance(file, str | os.PathLike):
            self.name = filename or Path(file).name
        else:
            self.name = filename or Path(str(getattr(file, "name", "") or "upload")).name
        self.start: int | None = None
        if not isinstance(file, str | os.PathLike | bytes):
            try:
                self.start = file.tell() if file.seekable() else None
            except (AttributeError, OSError):
                self.start = None

    @property
    def rewindable(self) -> bool:
        return isinstance(self.file, str | os.PathLike | bytes) or self.start is not None

    def open(self) -> tuple[IO[bytes] | bytes, Callable[[], None]]:
        if isinstance(self.file, str | os.PathLike):
            fh = Path(self.file).open("rb")  # noqa: SIM115 - closed by the returned callback
            return fh, fh.close
        if isinstance(self.file, bytes):
            return self.file, _noop
        if self.start is not None:
            self.file.seek(self.start)
        return self.file, _noop


def bulk_items(recordings: Sequence[Recording]) -> list[DownloadItem]:
    """File-name suffixes for downloading several recordings into one directory.

    The server names every recording of a session ``recording-{session_id}.mp3``. So that they
    do not overwrite each other: a non-``mixed`` channel adds ``-{channel}``
    (``recording-sess_1-agent.mp3``), and recordings that would still share a name (two ``mixed``
    recordings of one session) each add ``-{recording_id}``. The names depend only on the
    recordings in the batch, so a re-run finds (and skips) the same files.
    """
    unique = list({rec.id: rec for rec in recordings}.values())
    suffixes = {
        rec.id: "" if rec.channel in (None, "mixed") else f"-{rec.channel}" for rec in unique
    }
    sharing: dict[tuple[str | None, str], int] = {}
    for rec in unique:
        key = (rec.session_id, suffixes[rec.id])
        sharing[key] = sharing.get(key, 0) + 1
    items = []
    for rec in unique:
        suffix = suffixes[rec.id]
        if sharing[(rec.session_id, suffix)] > 1:
            suffix += f"-{rec.id}"
        items.append(DownloadItem(rec.id, safe_filename(suffix, "")))
    return items


class _Config:
    def __init__(
        self,
        api_key: str | None,
        base_url: str | httpx.URL | None,
        retry: RetryPolicy | None,
        max_retries: int | None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("KALLREC_API_KEY")
        if not key:
            raise ConfigurationError(
                "No API key: pass api_key=... or set KALLREC_API_KEY (an sk_live_… or sk_test_… "
                "key from `kallrec keys create`)."
            )
        url = str(base_url or os.environ.get("KALLREC_BASE_URL") or DEFAULT_BASE_URL).strip()
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"Base URL {url!r} must start with http:// or https:// (e.g. {DEFAULT_BASE_URL})."
            )
        self.api_key = key
        self.base_url = url.rstrip("/")
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = RetryPolicy(
                max_retries=max_retries,
                base_backoff=policy.base_backoff,
                max_backoff=policy.max_backoff,
                max_retry_after=policy.max_retry_after,
                sleep=policy.sleep,
                async_sleep=policy.async_sleep,
                random=policy.random,
            )
        self.retry = policy

    def headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers


def _new_idempotency_key() -> str:
    return f"kallrec-python-{uuid.uuid4()}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise APIError(
            f"The server answered HTTP {response.status_code} with a body that is not JSON.",
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
            headers=response.headers,
        ) from None


def _expect_dict(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping) or "id" not in payload:
        raise APIError("The server answered with an unexpected JSON shape.", status=200)
    return payload


def _list_of(payload: Any, build: Callable[[Mapping[str, Any]], M]) -> tuple[list[M], bool, Any]:
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), list):
        raise APIError("The server answered a list request with no 'data' list.", status=200)
    items = [build(item) for item in payload["data"] if isinstance(item, Mapping)]
    return items, bool(payload.get("has_more")), payload.get("url")


def _not_ready(recording_id: str, waited: float) -> RecordingNotReadyError:
    return RecordingNotReadyError(
        f"Recording '{recording_id}' is still processing after waiting {waited:g} s.",
        status=409,
        code="recording_not_ready",
        param="recording_id",
    )


# -- sync --------------------------------------------------------------------------------------


class Kallrec:
    """Synchronous client. Thread-safe; use one per process, and close it (or ``with``)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | httpx.URL | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = _Config(api_key, base_url, retry, max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            base_url=self._config.base_url,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            transport=transport,
        )
        self.sessions = Sessions(self)
        self.recordings = Recordings(self)
        self.webhook_endpoints = WebhookEndpoints(self)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    @property
    def retry(self) -> RetryPolicy:
        return self._config.retry

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def downloader(self) -> Downloader:
        return Downloader(self._http, self._config.headers(), self._config.retry)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        upload: tuple[_Upload, dict[str, str]] | None = None,
        idempotency_key: str | None = None,
        follow_redirects: bool = False,
        expect_json: bool = True,
    ) -> Any:
        """Send one API request with retries; the decoded JSON (or the response)."""
        if method == "POST" and idempotency_key is None:
            idempotency_key = _new_idempotency_key()
        attempt = 0
        while True:
            closer: Callable[[], None] = _noop
            try:
                files = None
                if upload is not None:
                    content, closer = upload[0].open()
                    files = {"file": (upload[0].name, content, "application/octet-stream")}
                response = self._http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    files=files,
                    data=upload[1] if upload is not None else None,
                    headers=self._config.headers(idempotency_key),
                    follow_redirects=follow_redirects,
                )
            except httpx.TransportError as exc:
                error: KallrecError = connection_error(exc)
                if upload is not None and not upload[0].rewindable:
                    raise error from exc
            else:
                if response.is_success or (response.is_redirect and not follow_redirects):
                    return _json(response) if expect_json else response
                error = error_from_response(response, response.content[:MAX_ERROR_BODY])
            finally:
                closer()
            attempt += 1
            delay = self._config.retry.next_delay(attempt, error)
            if delay is None:
                raise error
            self._config.retry.sleep(delay)

    def _page(
        self, path: str, params: dict[str, Any], build: Callable[[Mapping[str, Any]], M]
    ) -> SyncPage[M]:
        data, has_more, url = _list_of(self.request("GET", path, params=params), build)
        return SyncPage(
            data,
            has_more=has_more,
            url=url,
            params=params,
            fetch=lambda p: self._page(path, p, build),
        )


class Sessions:
    def __init__(self, client: Kallrec) -> None:
        self._client = client

    def create(
        self,
        *,
        mode: str,
        source_language: str | None = None,
        target_language: str | None = None,
        provider: str | None = None,
        recording: Mapping[str, Any] | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        routing: Mapping[str, Any] | None = None,
        ai_agent: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        """Create a session. ``routing`` as Kallglot's (``provider="twilio"`` is short for
        ``routing={"type": "twilio"}``); it records when ``recording={"enabled": True}`` or
        when its organization records by default."""
        body = _session_body(
            mode, source_language, target_language, provider, recording, metadata, routing, ai_agent
        )
        payload = self._client.request(
            "POST", "/v1/sessions", json=body, idempotency_key=idempotency_key
        )
        return Session.from_dict(_expect_dict(payload))

    def retrieve(self, session_id: str) -> Session:
        payload = self._client.request("GET", f"/v1/sessions/{_seg(session_id)}")
        return Session.from_dict(_expect_dict(payload))

    def list(
        self,
        *,
        status: str | None = None,
        created_gte: TimeInput | None = None,
        created_lt: TimeInput | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> SyncPage[Session]:
        """The organization's sessions, newest first; iterate for all pages."""
        params = {
            **_session_filters(status, created_gte, created_lt),
            **_page_params(limit, starting_after, ending_before),
        }
        return self._client._page("/v1/sessions", params, Session.from_dict)

    def end(
        self, session_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Session:
        """End the session (idempotent); its recordings exist, processing, when this returns.
        ``reason``: ``completed`` (the default), ``customer_hangup``, ``agent_hangup``,
        ``error`` or ``timeout``."""
        payload = self._client.request(
            "POST",
            f"/v1/sessions/{_seg(session_id)}/end",
            json=_clean({"reason": reason}),
            idempotency_key=idempotency_key,
        )
        return Session.from_dict(_expect_dict(payload))

    def list_recordings(
        self,
        session_id: str,
        *,
        channel: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> SyncPage[Recording]:
        params = {
            **_clean({"channel": channel}),
            **_page_params(limit, starting_after, ending_before),
        }
        path = f"/v1/sessions/{_seg(session_id)}/recordings"
        return self._client._page(path, params, Recording.from_dict)


class Recordings:
    def __init__(self, client: Kallrec) -> None:
        self._client = client

    def retrieve(self, recording_id: str) -> Recording:
        payload = self._client.request("GET", f"/v1/recordings/{_seg(recording_id)}")
        return Recording.from_dict(_expect_dict(payload))

    def list(
        self,
        *,
        session_id: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        created_gte: TimeInput | None = None,
        created_lt: TimeInput | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> SyncPage[Recording]:
        """The organization's recordings, newest first; iterate for all pages."""
        params = {
            **_recording_filters(session_id, channel, status, created_gte, created_lt),
            **_page_params(limit, starting_after, ending_before),
        }
        return self._client._page("/v1/recordings", params, Recording.from_dict)

    def create(
        self,
        file: FileInput,
        *,
        filename: str | None = None,
        session_id: str | None = None,
        channel: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Recording:
        """Import an existing call recording (a path, bytes or a binary file object)."""
        upload = (_Upload(file, filename), _import_fields(session_id, channel, metadata))
        payload = self._client.request(
            "POST", "/v1/recordings", upload=upload, idempotency_key=idempotency_key
        )
        return Recording.from_dict(_expect_dict(payload))

    def delete(self, recording_id: str) -> DeletedObject:
        payload = self._client.request("DELETE", f"/v1/recordings/{_seg(recording_id)}")
        return DeletedObject.from_dict(_expect_dict(payload))

    def wait(
        self, recording_id: str, *, max_wait: float = DEFAULT_WAIT_TIMEOUT, poll_interval: float = 1
    ) -> Recording:
        """Poll until the recording is no longer ``processing``; returns it (check ``status``)."""
        deadline = time.monotonic() + max_wait
        while True:
            rec = self.retrieve(recording_id)
            if rec.status != "processing":
                return rec
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _not_ready(recording_id, max_wait)
            self._client.retry.sleep(min(poll_interval, remaining))

    def download_link(
        self, recording_id: str, *, format: str = "mp3", sample_rate: int | None = None
    ) -> str:
        """The signed, expiring URL of a converted file (``GET …/download``, spec §4)."""
        response = self._client.request(
            "GET",
            f"/v1/recordings/{_seg(recording_id)}/download",
            params=_clean({"format": format, "sample_rate": sample_rate}),
            expect_json=False,
        )
        return _download_location(response, recording_id)

    def download(
        self,
        recording_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> DownloadResult:
        """Download the audio to ``path`` (a file, or a directory for the server's file name).

        Raises on failure; see ``_download`` for the guarantees.
        """
        return self._client.downloader().download(
            recording_id,
            path=path,
            directory=directory,
            wait_timeout=wait_timeout,
            skip_existing=skip_existing,
            on_progress=on_progress,
        )

    def download_many(
        self,
        recordings: Iterable[str | Recording],
        directory: str | os.PathLike[str],
        *,
        concurrency: int = 4,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> builtins.list[DownloadResult]:  # `list` here is the method
        """Download several recordings into one directory, ``concurrency`` at a time.

        Never raises for one file: each result says ``downloaded``/``resumed``/``skipped`` or
        ``failed`` (with ``error``); ``on_result`` gets each as soon as that file is finished.
        Bare ids are looked up first, to name files by channel (see ``bulk_items``).
        """
        resolved: list[Recording] = []
        failed: dict[str, DownloadResult] = {}
        for item in recordings:
            if isinstance(item, Recording):
                resolved.append(item)
                continue
            try:
                resolved.append(self.retrieve(item))
            except KallrecError as exc:
                failed[item] = DownloadResult(item, "failed", error=exc)
                if on_result is not None:
                    on_result(failed[item])
        results = self._client.downloader().download_many(
            bulk_items(resolved),
            directory=directory,
            concurrency=concurrency,
            wait_timeout=wait_timeout,
            skip_existing=skip_existing,
            on_progress=on_progress,
            on_result=on_result,
        )
        return [*results, *failed.values()]


class WebhookEndpoints:
    def __init__(self, client: Kallrec) -> None:
        self._client = client

    def create(
        self,
        *,
        url: str,
        enabled_events: Sequence[str],
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> WebhookEndpoint:
        """Register an endpoint; the answer's ``secret`` (``whsec_…``) is shown only now."""
        body = {"url": url, "enabled_events": list(enabled_events), **extra}
        payload = self._client.request(
            "POST", "/v1/webhook_endpoints", json=body, idempotency_key=idempotency_key
        )
        return WebhookEndpoint.from_dict(_expect_dict(payload))

    def retrieve(self, endpoint_id: str) -> WebhookEndpoint:
        payload = self._client.request("GET", f"/v1/webhook_endpoints/{_seg(endpoint_id)}")
        return WebhookEndpoint.from_dict(_expect_dict(payload))

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> SyncPage[WebhookEndpoint]:
        params = _page_params(limit, starting_after, ending_before)
        return self._client._page("/v1/webhook_endpoints", params, WebhookEndpoint.from_dict)

    def delete(self, endpoint_id: str) -> DeletedObject:
        payload = self._client.request("DELETE", f"/v1/webhook_endpoints/{_seg(endpoint_id)}")
        return DeletedObject.from_dict(_expect_dict(payload))


def _download_location(response: httpx.Response, recording_id: str) -> str:
    if response.status_code == 202:
        raise RecordingNotReadyError(
            f"Recording '{recording_id}' is still processing.",
            status=202,
            code="recording_not_ready",
            param="recording_id",
            request_id=response.headers.get("x-request-id"),
            headers=response.headers,
        )
    location = response.headers.get("location")
    if response.is_redirect and location:
        return str(response.url.join(location))
    raise DownloadError(f"Expected a redirect to the file, got HTTP {response.status_code}.")


# -- async -------------------------------------------------------------------------------------


class AsyncKallrec:
    """Asynchronous client (asyncio or trio through anyio); close it or use ``async with``."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | httpx.URL | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = _Config(api_key, base_url, retry, max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            base_url=self._config.base_url,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            transport=transport,
        )
        self.sessions = AsyncSessions(self)
        self.recordings = AsyncRecordings(self)
        self.webhook_endpoints = AsyncWebhookEndpoints(self)

    @property
    def base_url(self) -> str:
        return self._config.base_url

    @property
    def retry(self) -> RetryPolicy:
        return self._config.retry

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def downloader(self) -> AsyncDownloader:
        return AsyncDownloader(self._http, self._config.headers(), self._config.retry)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        upload: tuple[_Upload, dict[str, str]] | None = None,
        idempotency_key: str | None = None,
        follow_redirects: bool = False,
        expect_json: bool = True,
    ) -> Any:
        """Send one API request with retries; the decoded JSON (or the response)."""
        if method == "POST" and idempotency_key is None:
            idempotency_key = _new_idempotency_key()
        attempt = 0
        while True:
            closer: Callable[[], None] = _noop
            try:
                files = None
                if upload is not None:
                    content, closer = upload[0].open()
                    files = {"file": (upload[0].name, content, "application/octet-stream")}
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    files=files,
                    data=upload[1] if upload is not None else None,
                    headers=self._config.headers(idempotency_key),
                    follow_redirects=follow_redirects,
                )
            except httpx.TransportError as exc:
                error: KallrecError = connection_error(exc)
                if upload is not None and not upload[0].rewindable:
                    raise error from exc
            else:
                if response.is_success or (response.is_redirect and not follow_redirects):
                    return _json(response) if expect_json else response
                error = error_from_response(response, response.content[:MAX_ERROR_BODY])
            finally:
                closer()
            attempt += 1
            delay = self._config.retry.next_delay(attempt, error)
            if delay is None:
                raise error
            await self._config.retry.async_sleep(delay)

    async def _page(
        self, path: str, params: dict[str, Any], build: Callable[[Mapping[str, Any]], M]
    ) -> AsyncPage[M]:
        data, has_more, url = _list_of(await self.request("GET", path, params=params), build)
        return AsyncPage(
            data,
            has_more=has_more,
            url=url,
            params=params,
            fetch=lambda p: self._page(path, p, build),
        )

    def _pager(
        self, path: str, params: dict[str, Any], build: Callable[[Mapping[str, Any]], M]
    ) -> AsyncPager[M]:
        def fetch(p: dict[str, Any]) -> Awaitable[AsyncPage[M]]:
            return self._page(path, p, build)

        return AsyncPager(fetch, params)


class AsyncSessions:
    def __init__(self, client: AsyncKallrec) -> None:
        self._client = client

    async def create(
        self,
        *,
        mode: str,
        source_language: str | None = None,
        target_language: str | None = None,
        provider: str | None = None,
        recording: Mapping[str, Any] | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
        routing: Mapping[str, Any] | None = None,
        ai_agent: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Session:
        body = _session_body(
            mode, source_language, target_language, provider, recording, metadata, routing, ai_agent
        )
        payload = await self._client.request(
            "POST", "/v1/sessions", json=body, idempotency_key=idempotency_key
        )
        return Session.from_dict(_expect_dict(payload))

    async def retrieve(self, session_id: str) -> Session:
        payload = await self._client.request("GET", f"/v1/sessions/{_seg(session_id)}")
        return Session.from_dict(_expect_dict(payload))

    def list(
        self,
        *,
        status: str | None = None,
        created_gte: TimeInput | None = None,
        created_lt: TimeInput | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncPager[Session]:
        """``await`` for the first page, or ``async for`` every session."""
        params = {
            **_session_filters(status, created_gte, created_lt),
            **_page_params(limit, starting_after, ending_before),
        }
        return self._client._pager("/v1/sessions", params, Session.from_dict)

    async def end(
        self, session_id: str, *, reason: str | None = None, idempotency_key: str | None = None
    ) -> Session:
        payload = await self._client.request(
            "POST",
            f"/v1/sessions/{_seg(session_id)}/end",
            json=_clean({"reason": reason}),
            idempotency_key=idempotency_key,
        )
        return Session.from_dict(_expect_dict(payload))

    def list_recordings(
        self,
        session_id: str,
        *,
        channel: str | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncPager[Recording]:
        params = {
            **_clean({"channel": channel}),
            **_page_params(limit, starting_after, ending_before),
        }
        path = f"/v1/sessions/{_seg(session_id)}/recordings"
        return self._client._pager(path, params, Recording.from_dict)


class AsyncRecordings:
    def __init__(self, client: AsyncKallrec) -> None:
        self._client = client

    async def retrieve(self, recording_id: str) -> Recording:
        payload = await self._client.request("GET", f"/v1/recordings/{_seg(recording_id)}")
        return Recording.from_dict(_expect_dict(payload))

    def list(
        self,
        *,
        session_id: str | None = None,
        channel: str | None = None,
        status: str | None = None,
        created_gte: TimeInput | None = None,
        created_lt: TimeInput | None = None,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncPager[Recording]:
        """``await`` for the first page, or ``async for`` every recording."""
        params = {
            **_recording_filters(session_id, channel, status, created_gte, created_lt),
            **_page_params(limit, starting_after, ending_before),
        }
        return self._client._pager("/v1/recordings", params, Recording.from_dict)

    async def create(
        self,
        file: FileInput,
        *,
        filename: str | None = None,
        session_id: str | None = None,
        channel: str | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Recording:
        upload = (_Upload(file, filename), _import_fields(session_id, channel, metadata))
        payload = await self._client.request(
            "POST", "/v1/recordings", upload=upload, idempotency_key=idempotency_key
        )
        return Recording.from_dict(_expect_dict(payload))

    async def delete(self, recording_id: str) -> DeletedObject:
        payload = await self._client.request("DELETE", f"/v1/recordings/{_seg(recording_id)}")
        return DeletedObject.from_dict(_expect_dict(payload))

    async def wait(
        self, recording_id: str, *, max_wait: float = DEFAULT_WAIT_TIMEOUT, poll_interval: float = 1
    ) -> Recording:
        deadline = time.monotonic() + max_wait
        while True:
            rec = await self.retrieve(recording_id)
            if rec.status != "processing":
                return rec
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _not_ready(recording_id, max_wait)
            await self._client.retry.async_sleep(min(poll_interval, remaining))

    async def download_link(
        self, recording_id: str, *, format: str = "mp3", sample_rate: int | None = None
    ) -> str:
        response = await self._client.request(
            "GET",
            f"/v1/recordings/{_seg(recording_id)}/download",
            params=_clean({"format": format, "sample_rate": sample_rate}),
            expect_json=False,
        )
        return _download_location(response, recording_id)

    async def download(
        self,
        recording_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> DownloadResult:
        return await self._client.downloader().download(
            recording_id,
            path=path,
            directory=directory,
            wait_timeout=wait_timeout,
            skip_existing=skip_existing,
            on_progress=on_progress,
        )

    async def download_many(
        self,
        recordings: Iterable[str | Recording],
        directory: str | os.PathLike[str],
        *,
        concurrency: int = 4,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
        skip_existing: bool = True,
        on_progress: ProgressCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> builtins.list[DownloadResult]:  # `list` here is the method
        resolved: list[Recording] = []
        failed: dict[str, DownloadResult] = {}
        for item in recordings:
            if isinstance(item, Recording):
                resolved.append(item)
                continue
            try:
                resolved.append(await self.retrieve(item))
            except KallrecError as exc:
                failed[item] = DownloadResult(item, "failed", error=exc)
                if on_result is not None:
                    on_result(failed[item])
        results = await self._client.downloader().download_many(
            bulk_items(resolved),
            directory=directory,
            concurrency=concurrency,
            wait_timeout=wait_timeout,
            skip_existing=skip_existing,
            on_progress=on_progress,
            on_result=on_result,
        )
        return [*results, *failed.values()]


class AsyncWebhookEndpoints:
    def __init__(self, client: AsyncKallrec) -> None:
        self._client = client

    async def create(
        self,
        *,
        url: str,
        enabled_events: Sequence[str],
        idempotency_key: str | None = None,
        **extra: Any,
    ) -> WebhookEndpoint:
        body = {"url": url, "enabled_events": list(enabled_events), **extra}
        payload = await self._client.request(
            "POST", "/v1/webhook_endpoints", json=body, idempotency_key=idempotency_key
        )
        return WebhookEndpoint.from_dict(_expect_dict(payload))

    async def retrieve(self, endpoint_id: str) -> WebhookEndpoint:
        payload = await self._client.request("GET", f"/v1/webhook_endpoints/{_seg(endpoint_id)}")
        return WebhookEndpoint.from_dict(_expect_dict(payload))

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> AsyncPager[WebhookEndpoint]:
        params = _page_params(limit, starting_after, ending_before)
        return self._client._pager("/v1/webhook_endpoints", params, WebhookEndpoint.from_dict)

    async def delete(self, endpoint_id: str) -> DeletedObject:
        payload = await self._client.request("DELETE", f"/v1/webhook_endpoints/{_seg(endpoint_id)}")
        return DeletedObject.from_dict(_expect_dict(payload))
