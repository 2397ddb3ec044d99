"""The download engine against a scripted in-memory server (httpx.MockTransport), sync and async."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from kallrec.client import (
    APIConnectionError,
    AsyncKallrec,
    AuthenticationError,
    ConflictError,
    DownloadError,
    DownloadProgress,
    DownloadResult,
    GoneError,
    IntegrityError,
    Kallrec,
    NotFoundError,
    PermissionDeniedError,
    Recording,
    RecordingNotReadyError,
    RetryPolicy,
    ServiceUnavailableError,
)
from kallrec.client._partfile import PartFile, Validator
from tests.client.fakes import BASE, KEY, FakeAudio, error

CONTENT = os.urandom(300_000)
NEW_CONTENT = os.urandom(310_000)


class Sleeps(list[float]):
    def sleep(self, seconds: float) -> None:
        self.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def policy(sleeps: Sleeps, max_retries: int = 5) -> RetryPolicy:
    return RetryPolicy(
        max_retries=max_retries,
        sleep=sleeps.sleep,
        async_sleep=sleeps.async_sleep,
        random=lambda: 0.0,
    )


class Runner:
    """Runs the same download through the sync or the async client."""

    def __init__(self, mode: str, fake: Any, sleeps: Sleeps, max_retries: int = 5) -> None:
        self.mode = mode
        self.fake = fake
        self.retry = policy(sleeps, max_retries)

    async def download(self, rec_id: str = "rec_1", *args: Any, **kwargs: Any) -> DownloadResult:
        if self.mode == "sync":
            with Kallrec(
                KEY, base_url=BASE, retry=self.retry, transport=httpx.MockTransport(self.fake)
            ) as client:
                return client.recordings.download(rec_id, *args, **kwargs)
        async with AsyncKallrec(
            KEY, base_url=BASE, retry=self.retry, transport=httpx.MockTransport(self.fake)
        ) as aclient:
            return await aclient.recordings.download(rec_id, *args, **kwargs)

    async def download_many(self, recs: list[Any], directory: Path, **kw: Any) -> Any:
        if self.mode == "sync":
            with Kallrec(
                KEY, base_url=BASE, retry=self.retry, transport=httpx.MockTransport(self.fake)
            ) as client:
                return client.recordings.download_many(recs, directory, **kw)
        async with AsyncKallrec(
            KEY, base_url=BASE, retry=self.retry, transport=httpx.MockTransport(self.fake)
        ) as aclient:
            return await aclient.recordings.download_many(recs, directory, **kw)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_downloads_to_the_server_file_name(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    events: list[DownloadProgress] = []
    result = await Runner(mode, fake, sleeps).download(
        directory=tmp_path, on_progress=events.append
    )
    assert result.status == "downloaded"
    assert result.path == tmp_path / "recording-sess_1.mp3"
    assert result.path.read_bytes() == CONTENT
    assert result.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert files(tmp_path) == ["recording-sess_1.mp3"]
    assert [r.method for r in fake.requests] == ["HEAD", "GET"]
    assert fake.requests[1].headers["accept-encoding"] == "identity"
    received = [e.received for e in events if e.phase == "downloading"]
    assert received == sorted(received) and received[-1] == len(CONTENT)
    assert events[-1].phase == "done"


async def test_waits_for_processing_then_downloads(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    not_ready = error(409, "recording_not_ready", retry_after=2, param="recording_id")
    # HEAD has no body, so the engine asks again with a GET to learn which 409 it is.
    fake.scripted = [not_ready, not_ready, not_ready, not_ready]
    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert result.path is not None and result.path.read_bytes() == CONTENT
    assert sleeps == [2.0, 2.0]


async def test_processing_wait_gives_up_at_the_timeout(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.scripted = [error(409, "recording_not_ready", retry_after=2)] * 100
    with pytest.raises(RecordingNotReadyError) as info:
        await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3", wait_timeout=5)
    assert sum(sleeps) == pytest.approx(5.0)
    assert "Still processing after waiting 5 s" in info.value.message
    assert info.value.code == "recording_not_ready"
    assert files(tmp_path) == []


async def test_429_and_503_are_retried_after_retry_after(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.scripted = [
        error(429, "rate_limit_exceeded", type_="rate_limit_error", retry_after=3),
        error(503, "storage_unavailable", type_="api_error", retry_after=1),
    ]
    fake.cuts = []
    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert result.path is not None and result.path.read_bytes() == CONTENT
    assert sleeps == [3.0, 1.0]


async def test_503_during_the_body_request_is_retried(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)

    def flaky(f: FakeAudio, request: httpx.Request) -> None:
        if request.method == "GET" and len(f.gets()) == 1:
            f.scripted = [error(503, "storage_unavailable", type_="api_error", retry_after=5)]

    fake.on_request = flaky
    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert result.path is not None and result.path.read_bytes() == CONTENT
    assert sleeps == [5.0]


async def test_retries_run_out(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.scripted = [error(503, "storage_unavailable", type_="api_error")] * 10
    with pytest.raises(ServiceUnavailableError) as info:
        await Runner(mode, fake, sleeps, max_retries=3).download(path=tmp_path / "x.mp3")
    assert len(sleeps) == 3
    assert info.value.code == "storage_unavailable"
    assert files(tmp_path) == []


@pytest.mark.parametrize(
    ("status", "code", "type_", "exc"),
    [
        (404, "resource_missing", "invalid_request_error", NotFoundError),
        (410, "recording_expired", "invalid_request_error", GoneError),
        (409, "recording_failed", "invalid_request_error", ConflictError),
        (401, "invalid_api_key", "authentication_error", AuthenticationError),
        (403, "insufficient_permissions", "permission_error", PermissionDeniedError),
    ],
)
async def test_permanent_errors_are_raised_at_once(
    mode: str, sleeps: Sleeps, tmp_path: Path, status: int, code: str, type_: str, exc: type
):
    fake = FakeAudio(CONTENT)
    fake.scripted = [error(status, code, type_=type_)] * 2
    with pytest.raises(exc) as info:
        await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert info.value.code == code
    assert info.value.status == status
    assert info.value.request_id == "req_123"
    assert not isinstance(info.value, RecordingNotReadyError)
    assert sleeps == []
    assert files(tmp_path) == []


async def test_cut_body_resumes_with_range_and_if_range(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.cuts = [100_000, 50_000]
    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert result.path is not None and result.path.read_bytes() == CONTENT
    gets = fake.gets()
    assert [g.headers.get("range") for g in gets] == [None, "bytes=100000-", "bytes=150000-"]
    assert all(g.headers["if-range"] == fake.etag for g in gets[1:])
    assert result.bytes_transferred == len(CONTENT)
    assert files(tmp_path) == ["x.mp3"]


async def test_if_range_mismatch_starts_over_with_the_new_content(
    mode: str, sleeps: Sleeps, tmp_path: Path
):
    fake = FakeAudio(CONTENT)
    old_etag = fake.etag
    fake.cuts = [100_000]

    def change(f: FakeAudio, request: httpx.Request) -> None:
        if request.method == "GET" and len(f.gets()) == 2:
            f.content = NEW_CONTENT  # the recording changed between the two attempts

    fake.on_request = change
    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    gets = fake.gets()
    assert gets[1].headers["range"] == "bytes=100000-"
    assert gets[1].headers["if-range"] == old_etag
    assert result.path is not None and result.path.read_bytes() == NEW_CONTENT
    assert result.sha256 == hashlib.sha256(NEW_CONTENT).hexdigest()
    assert files(tmp_path) == ["x.mp3"]


async def test_a_206_of_another_version_is_never_spliced(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.honour_if_range = False  # a broken server: ranges of whatever it has now
    fake.cuts = [100_000]

    def change(f: FakeAudio, request: httpx.Request) -> None:
        if request.method == "GET" and len(f.gets()) == 2:
            f.content = CONTENT[:100_000] + NEW_CONTENT[100_000:300_000]

    fake.on_request = change
    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert [g.headers.get("range") for g in fake.gets()] == [None, "bytes=100000-", None]
    assert result.path is not None and result.path.read_bytes() == fake.content


async def test_wrong_bytes_fail_loudly_and_leave_nothing(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.etag_override = '"' + hashlib.sha256(b"something else").hexdigest() + '"'
    with pytest.raises(IntegrityError) as info:
        await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert info.value.actual == hashlib.sha256(CONTENT).hexdigest()
    assert len(fake.gets()) == 2  # verified, started over once, verified again
    assert files(tmp_path) == []


async def test_failure_keeps_only_the_part_file(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.cuts = [120_000]
    with pytest.raises(APIConnectionError):
        await Runner(mode, fake, sleeps, max_retries=0).download(path=tmp_path / "x.mp3")
    assert files(tmp_path) == ["x.mp3.part", "x.mp3.part.json"]
    assert (tmp_path / "x.mp3.part").read_bytes() == CONTENT[:120_000]

    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert result.status == "resumed"
    assert result.resumed_from == 120_000
    assert fake.gets()[-1].headers["range"] == "bytes=120000-"
    assert (tmp_path / "x.mp3").read_bytes() == CONTENT
    assert files(tmp_path) == ["x.mp3"]


async def test_complete_files_are_skipped_and_others_replaced(
    mode: str, sleeps: Sleeps, tmp_path: Path
):
    fake = FakeAudio(CONTENT)
    target = tmp_path / "x.mp3"
    target.write_bytes(CONTENT)
    result = await Runner(mode, fake, sleeps).download(path=target)
    assert result.status == "skipped"
    assert fake.gets() == []

    target.write_bytes(CONTENT[:-1] + b"\x00")  # same size, different bytes
    result = await Runner(mode, fake, sleeps).download(path=target)
    assert result.status == "downloaded"
    assert target.read_bytes() == CONTENT

    result = await Runner(mode, fake, sleeps).download(path=target, skip_existing=False)
    assert result.status == "downloaded"


async def test_dangerous_server_file_names_stay_in_the_directory(
    mode: str, sleeps: Sleeps, tmp_path: Path
):
    fake = FakeAudio(CONTENT)
    fake.disposition = 'attachment; filename="../../etc/passwd"'
    result = await Runner(mode, fake, sleeps).download(directory=tmp_path / "out")
    assert result.path == tmp_path / "out" / "passwd"
    assert result.path.read_bytes() == CONTENT


async def test_bulk_download_names_channels_apart(mode: str, sleeps: Sleeps, tmp_path: Path):
    bodies = {f"rec_{c}": os.urandom(50_000) for c in ("m", "a", "c", "m2")}
    fakes = {rid: FakeAudio(body, rec_id=rid, session_id="sess_1") for rid, body in bodies.items()}
    fakes["rec_a"].cuts = [10_000]

    def route(request: httpx.Request) -> httpx.Response:
        return fakes[request.url.path.split("/")[3]](request)

    recs = [
        Recording("rec_m", session_id="sess_1", channel="mixed"),
        Recording("rec_a", session_id="sess_1", channel="agent"),
        Recording("rec_c", session_id="sess_1", channel="customer"),
        Recording("rec_m2", session_id="sess_1", channel="mixed"),
    ]
    results = await Runner(mode, route, sleeps).download_many(recs, tmp_path, concurrency=2)
    names = {r.recording_id: r.path.name for r in results if r.path}
    assert names == {
        "rec_m": "recording-sess_1-rec_m.mp3",
        "rec_a": "recording-sess_1-agent.mp3",
        "rec_c": "recording-sess_1-customer.mp3",
        "rec_m2": "recording-sess_1-rec_m2.mp3",
    }
    for r in results:
        assert r.ok and r.path is not None
        assert r.path.read_bytes() == bodies[r.recording_id]
    assert len(files(tmp_path)) == 4


async def test_bulk_download_reports_each_failure(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT, rec_id="rec_ok")
    recs = [Recording("rec_ok", session_id="sess_1"), Recording("rec_gone", session_id="sess_2")]
    results = await Runner(mode, fake, sleeps).download_many(recs, tmp_path)
    by_id = {r.recording_id: r for r in results}
    assert by_id["rec_ok"].status == "downloaded"
    assert by_id["rec_gone"].status == "failed"
    assert isinstance(by_id["rec_gone"].error, NotFoundError)


def test_a_part_file_is_written_by_one_download_at_a_time(tmp_path: Path) -> None:
    first = PartFile(tmp_path / "x.mp3", "rec_1")
    first.open(Validator(etag='"a"', size=10))
    try:
        with pytest.raises(DownloadError, match="another download"):
            PartFile(tmp_path / "x.mp3", "rec_1").open(Validator(etag='"a"', size=10))
    finally:
        first.close()


async def test_other_etags_are_checked_by_length_only(mode: str, sleeps: Sleeps, tmp_path: Path):
    fake = FakeAudio(CONTENT)
    fake.etag_override = '"v7"'
    fake.cuts = [1000]
    result = await Runner(mode, fake, sleeps).download(path=tmp_path / "x.mp3")
    assert result.path is not None and result.path.read_bytes() == CONTENT
    assert fake.gets()[1].headers["if-range"] == '"v7"'


async def test_without_validators_a_cut_starts_over_and_gives_up_without_progress(
    mode: str, sleeps: Sleeps, tmp_path: Path
):
    fake = FakeAudio(CONTENT)
    fake.send_validators = False
    fake.cuts = [1000] * 50
    with pytest.raises(APIConnectionError):
        await Runner(mode, fake, sleeps, max_retries=3).download(path=tmp_path / "x.mp3")
    gets = fake.gets()
    assert len(gets) == 4
    assert all("range" not in g.headers for g in gets)  # never a resume it could not check
    assert not (tmp_path / "x.mp3").exists()
