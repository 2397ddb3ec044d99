"""The typed client over httpx.MockTransport: resources, errors, retries, pagination, config."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest

import kallrec.client
from kallrec.client import (
    APIConnectionError,
    APIError,
    APIStatusError,
    AsyncKallrec,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    DeletedObject,
    GoneError,
    InvalidRequestError,
    Kallrec,
    KallrecError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    Recording,
    RecordingNotReadyError,
    RetryPolicy,
    ServiceUnavailableError,
    Session,
    ValidationError,
    WebhookEndpoint,
)
from kallrec.client._errors import parse_retry_after
from tests.client.fakes import BASE, KEY, error, page

Handler = Callable[[httpx.Request], httpx.Response]


def rec(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"rec_{i:03d}",
        "object": "recording",
        "session_id": "sess_1",
        "channel": "mixed",
        "status": "ready",
        "duration": 12.5,
        "format": "mp3",
        "size": 1000 + i,
        "sample_rate": 8000,
        "bit_depth": 16,
        "download_url": f"/v1/recordings/rec_{i:03d}/audio",
        "created_at": "2026-03-26T11:04:20Z",
        "expires_at": "2026-04-25T11:04:20Z",
        **extra,
    }


class Recorder:
    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def make(handler: Handler, sleeps: list[float] | None = None, **kw: Any) -> Kallrec:
    retry = RetryPolicy(sleep=(sleeps if sleeps is not None else []).append, random=lambda: 0.5)
    return Kallrec(KEY, base_url=BASE, retry=retry, transport=httpx.MockTransport(handler), **kw)


def amake(handler: Handler, sleeps: list[float] | None = None) -> AsyncKallrec:
    target = sleeps if sleeps is not None else []

    async def asleep(seconds: float) -> None:
        target.append(seconds)

    retry = RetryPolicy(async_sleep=asleep, random=lambda: 0.5)
    return AsyncKallrec(KEY, base_url=BASE, retry=retry, transport=httpx.MockTransport(handler))


def test_public_api_is_pinned() -> None:
    assert set(kallrec.client.__all__) == {
        "DEFAULT_BASE_URL", "APIConnectionError", "APIError", "APIStatusError",
        "APITimeoutError", "AsyncKallrec", "AsyncPage", "AsyncPager", "AuthenticationError",
        "ConfigurationError", "ConflictError", "DeletedObject", "DownloadError", "DownloadItem",
        "DownloadProgress", "DownloadResult", "GoneError", "IntegrityError",
        "InvalidRequestError", "Kallrec", "KallrecError", "NotFoundError",
        "PermissionDeniedError", "PreconditionFailedError", "ProgressCallback",
        "RangeNotSatisfiableError", "RateLimitError", "Recording", "RecordingNotReadyError",
        "RecordingSettings", "ResultCallback", "RetryPolicy", "ServiceUnavailableError", "Session",
        "SessionStream", "SyncPage", "ValidationError", "WebhookEndpoint", "bulk_items",
        "filename_from_disposition", "safe_filename",
    }  # fmt: skip
    for name in kallrec.client.__all__:
        assert hasattr(kallrec.client, name)


# -- configuration -----------------------------------------------------------------------------


def test_configuration_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALLREC_API_KEY", "sk_test_env")
    monkeypatch.setenv("KALLREC_BASE_URL", "https://calls.example.com/kallrec/")
    seen = Recorder(httpx.Response(200, json=rec(1)))
    with Kallrec(transport=httpx.MockTransport(seen)) as client:
        assert client.base_url == "https://calls.example.com/kallrec"
        client.recordings.retrieve("rec_001")
    request = seen.requests[0]
    assert str(request.url) == "https://calls.example.com/kallrec/v1/recordings/rec_001"
    assert request.headers["authorization"] == "Bearer sk_test_env"
    assert request.headers["user-agent"].startswith("kallrec-python/")


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALLREC_API_KEY", "sk_test_env")
    client = Kallrec("sk_test_arg", base_url="http://other:9000")
    assert client.base_url == "http://other:9000"
    assert client._config.api_key == "sk_test_arg"
    client.close()


def test_missing_key_or_bad_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KALLREC_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="KALLREC_API_KEY"):
        Kallrec()
    with pytest.raises(ConfigurationError, match="http"):
        Kallrec("sk_test_x", base_url="ftp://nope")


def test_ids_cannot_escape_the_path() -> None:
    seen = Recorder(httpx.Response(200, json=rec(1)))
    with make(seen) as client:
        client.recordings.retrieve("../sessions/x?y")
    assert seen.requests[0].url.raw_path == b"/v1/recordings/..%2Fsessions%2Fx%3Fy"


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "type_", "code", "cls"),
    [
        (400, "invalid_request_error", "invalid_request", InvalidRequestError),
        (400, "validation_error", "missing_required_field", ValidationError),
        (400, "validation_error", "invalid_language_code", ValidationError),
        (401, "authentication_error", "revoked_api_key", AuthenticationError),
        (401, "authentication_error", "expired_api_key", AuthenticationError),
        (401, "authentication_error", "invalid_api_key", AuthenticationError),
        (403, "permission_error", "insufficient_permissions", PermissionDeniedError),
        (404, "invalid_request_error", "resource_missing", NotFoundError),
        (409, "invalid_request_error", "recording_failed", ConflictError),
        (409, "invalid_request_error", "recording_not_ready", RecordingNotReadyError),
        (410, "invalid_request_error", "recording_expired", GoneError),
        (413, "invalid_request_error", "file_too_large", InvalidRequestError),
        (429, "rate_limit_error", "rate_limit_exceeded", RateLimitError),
        (500, "api_error", "internal_error", APIError),
        (503, "api_error", "storage_unavailable", ServiceUnavailableError),
    ],
)
def test_error_envelope_maps_to_exceptions(
    status: int, type_: str, code: str, cls: type[APIStatusError]
) -> None:
    answer = error(status, code, type_=type_, param="recording_id", message="Bad thing.")
    with make(Recorder(*[answer] * 10), max_retries=0) as client, pytest.raises(cls) as info:
        client.recordings.retrieve("rec_1")
    exc = info.value
    assert type(exc) is cls
    assert (exc.status, exc.type, exc.code, exc.param) == (status, type_, code, "recording_id")
    assert exc.request_id == "req_123"
    assert exc.message == "Bad thing."
    assert str(exc) == f"Bad thing. [{status} {code}] (request req_123)"
    assert isinstance(exc, KallrecError)
    if status in (404, 409, 410, 413):
        assert isinstance(exc, InvalidRequestError)


def test_error_without_an_envelope_still_maps() -> None:
    answer = httpx.Response(502, text="<html>Bad Gateway</html>", headers={"x-request-id": "r9"})
    with make(Recorder(answer), max_retries=0) as client, pytest.raises(APIError) as info:
        client.recordings.retrieve("rec_1")
    assert info.value.status == 502
    assert info.value.code is None
    assert info.value.request_id == "r9"
    assert "HTTP 502" in info.value.message


def test_retry_after_header_and_body() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("soon") is None
    assert parse_retry_after(formatdate(1_000_030, usegmt=True), now=1_000_000) == 30.0
    answer = httpx.Response(
        429, json={"error": {"type": "rate_limit_error", "code": "x", "retry_after": 4}}
    )
    with make(Recorder(answer), max_retries=0) as client, pytest.raises(RateLimitError) as info:
        client.recordings.retrieve("rec_1")
    assert info.value.retry_after == 4.0


# -- retries -----------------------------------------------------------------------------------


def test_429_503_and_connection_errors_are_retried() -> None:
    sleeps: list[float] = []
    seen = Recorder(
        error(429, "rate_limit_exceeded", type_="rate_limit_error", retry_after=3),
        httpx.ConnectError("refused"),
        error(503, "storage_unavailable", type_="api_error"),
        httpx.Response(200, json=rec(1)),
    )
    with make(seen, sleeps) as client:
        got = client.recordings.retrieve("rec_001")
    assert got.id == "rec_001"
    # Retry-After 3 (+ jitter ≤ 10 %), then full jitter on 0.5·2^(n-1) with random() = 0.5.
    assert sleeps == [pytest.approx(3.15), pytest.approx(0.5), pytest.approx(1.0)]


def test_permanent_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    seen = Recorder(error(400, "invalid_request", param="limit"))
    with make(seen, sleeps) as client, pytest.raises(InvalidRequestError):
        client.recordings.retrieve("rec_1")
    assert sleeps == [] and len(seen.requests) == 1


def test_retry_after_beyond_the_cap_is_not_waited_for() -> None:
    sleeps: list[float] = []
    seen = Recorder(error(429, "rate_limit_exceeded", type_="rate_limit_error", retry_after=3600))
    with make(seen, sleeps) as client, pytest.raises(RateLimitError):
        client.recordings.retrieve("rec_1")
    assert sleeps == []


def test_connection_errors_give_up_after_max_retries() -> None:
    sleeps: list[float] = []
    seen = Recorder(*[httpx.ConnectError("refused")] * 10)
    with make(seen, sleeps, max_retries=2) as client, pytest.raises(APIConnectionError):
        client.recordings.retrieve("rec_1")
    assert len(seen.requests) == 3 and len(sleeps) == 2


def test_creates_carry_one_idempotency_key_across_retries() -> None:
    session = {"id": "sess_1", "object": "session", "status": "created", "mode": "ai_agent"}
    seen = Recorder(httpx.ReadError("reset"), httpx.Response(201, json=session))
    with make(seen) as client:
        created = client.sessions.create(mode="ai_agent", metadata={"crm": "42"})
    assert created.id == "sess_1"
    keys = {r.headers["idempotency-key"] for r in seen.requests}
    assert len(keys) == 1 and next(iter(keys)).startswith("kallrec-python-")
    assert json.loads(seen.requests[0].content) == {"mode": "ai_agent", "metadata": {"crm": "42"}}


# -- resources ---------------------------------------------------------------------------------


def test_sessions() -> None:
    body = {
        "id": "sess_1",
        "object": "session",
        "status": "active",
        "mode": "bidirectional_translation",
        "source_language": "en",
        "target_language": None,
        "provider": "twilio",
        "stream": {
            "url": "ws://h/v1/sessions/sess_1/connect",
            "token": "kst_x",
            "expires_at": None,
        },
        "recording": {"enabled": True, "channels": "dual"},
        "metadata": {"a": "b"},
        "created_at": "2026-03-26T11:04:20Z",
        "started_at": "2026-03-26T11:04:21Z",
        "ended_at": None,
        "duration": None,
        "brand_new_field": {"x": 1},
    }
    seen = Recorder(
        httpx.Response(200, json=body),
        httpx.Response(200, json={**body, "status": "ended", "stream": None}),
        page([rec(1, channel="agent")], False, "/v1/sessions/sess_1/recordings"),
    )
    with make(seen) as client:
        got = client.sessions.retrieve("sess_1")
        ended = client.sessions.end("sess_1")
        recs = list(client.sessions.list_recordings("sess_1", channel="agent"))
    assert isinstance(got, Session)
    assert got.stream is not None and got.stream.token == "kst_x"
    assert got.recording.channels == "dual"
    assert got.created_at == datetime(2026, 3, 26, 11, 4, 20, tzinfo=UTC)
    assert got.raw["brand_new_field"] == {"x": 1}
    assert ended.status == "ended" and ended.stream is None
    assert [r.channel for r in recs] == ["agent"]
    assert [(r.method, r.url.path) for r in seen.requests] == [
        ("GET", "/v1/sessions/sess_1"),
        ("POST", "/v1/sessions/sess_1/end"),
        ("GET", "/v1/sessions/sess_1/recordings"),
    ]
    assert seen.requests[2].url.params["channel"] == "agent"


KALLGLOT_SESSION = {
    "id": "sess_1",
    "object": "session",
    "status": "ended",
    "mode": "bidirectional_translation",
    "provider": "sip",
    "phone_number": "+14155551234",
    "source_language": "de",
    "target_language": "en-US",
    "stream": None,
    "recording": {"enabled": True, "channels": "mixed", "id": "rec_9", "duration": 245.3},
    "metadata": {"customer_id": "cust_123", "attempt": 2, "vip": True, "nested": {"x": 1}},
    "routing": {"type": "sip", "sip": {"from_uri": "sip:alice@example.com"}},
    "ai_agent": {"voice": "alloy"},
    "created_at": "2026-03-26T11:00:00Z",
    "started_at": "2026-03-26T11:00:15Z",
    "ended_at": "2026-03-26T11:04:20Z",
    "duration": 245.3,
    "duration_seconds": 245.3,
    "end_reason": "customer_hangup",
}


def test_sessions_with_kallglots_fields() -> None:
    seen = Recorder(
        httpx.Response(201, json={**KALLGLOT_SESSION, "status": "created"}),
        httpx.Response(200, json=KALLGLOT_SESSION),
        httpx.Response(200, json=KALLGLOT_SESSION),
        page([KALLGLOT_SESSION], False, "/v1/sessions"),
    )
    routing = {"type": "sip", "sip": {"from_uri": "sip:alice@example.com"}}
    with make(seen) as client:
        client.sessions.create(
            mode="bidirectional_translation",
            routing=routing,
            ai_agent={"voice": "alloy"},
            recording={"enabled": True},
            metadata={"attempt": 2, "vip": True},
        )
        client.sessions.create(mode="ai_agent", provider="twilio")  # short for routing.type
        ended = client.sessions.end("sess_1", reason="customer_hangup", idempotency_key="k-1")
        listed = client.sessions.list(status="ended", created_gte="2026-03-01", limit=5)
    bodies = [json.loads(r.content) if r.content else None for r in seen.requests]
    assert bodies[0] == {
        "mode": "bidirectional_translation",
        "routing": routing,
        "recording": {"enabled": True},
        "metadata": {"attempt": 2, "vip": True},
        "ai_agent": {"voice": "alloy"},
    }
    assert bodies[1] == {"mode": "ai_agent", "routing": {"type": "twilio"}}
    assert bodies[2] == {"reason": "customer_hangup"}
    assert seen.requests[2].headers["idempotency-key"] == "k-1"
    assert dict(seen.requests[3].url.params) == {
        "status": "ended",
        "created[gte]": "2026-03-01",
        "limit": "5",
    }
    assert (ended.provider, ended.phone_number, ended.end_reason) == (
        "sip",
        "+14155551234",
        "customer_hangup",
    )
    assert ended.recording.id == "rec_9" and ended.recording.duration == 245.3
    assert ended.metadata == {"customer_id": "cust_123", "attempt": 2, "vip": True}
    assert ended.routing == routing and ended.ai_agent == {"voice": "alloy"}
    assert [s.id for s in listed] == ["sess_1"]


def test_routing_and_provider_together_are_a_configuration_error() -> None:
    with make(Recorder()) as client, pytest.raises(ConfigurationError):
        client.sessions.create(mode="ai_agent", provider="sip", routing={"type": "sip"})


def test_the_newer_end_answer_gives_its_duration_seconds_as_duration() -> None:
    answer = {"id": "sess_1", "object": "session", "status": "ended", "duration_seconds": 245.3}
    assert Session.from_dict(answer).duration == 245.3
    assert Session.from_dict(answer).recording.enabled is False


async def test_async_sessions_list_and_end() -> None:
    seen = Recorder(
        page([KALLGLOT_SESSION], False, "/v1/sessions"),
        httpx.Response(200, json=KALLGLOT_SESSION),
    )
    async with amake(seen) as client:
        ids = [s.id async for s in client.sessions.list(status="ended")]
        ended = await client.sessions.end("sess_1", reason="error")
    assert ids == ["sess_1"] and ended.end_reason == "customer_hangup"
    assert json.loads(seen.requests[1].content) == {"reason": "error"}


def test_recordings_import_and_delete(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    wav.write_bytes(b"RIFF....WAVE")
    seen = Recorder(
        httpx.ConnectError("refused"),
        httpx.Response(202, json=rec(1, status="processing", size=None)),
        httpx.Response(200, json={"id": "rec_001", "object": "recording", "deleted": True}),
    )
    with make(seen) as client:
        created = client.recordings.create(
            wav, session_id="sess_1", channel="dual", metadata={"crm": "9"}
        )
        deleted = client.recordings.delete("rec_001")
    assert created.status == "processing" and created.size is None
    assert deleted == DeletedObject("rec_001", "recording", True)
    upload = seen.requests[1]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    content = upload.read()
    for part in (b'name="file"; filename="call.wav"', b"RIFF....WAVE", b'name="metadata[crm]"'):
        assert part in content
    assert seen.requests[0].headers["idempotency-key"] == upload.headers["idempotency-key"]


def test_list_filters_and_auto_pagination() -> None:
    pages = [
        page([rec(5), rec(4)], True, "/v1/recordings"),
        page([rec(3), rec(2)], True, "/v1/recordings"),
        page([rec(1)], False, "/v1/recordings"),
    ]
    seen = Recorder(*pages)
    with make(seen) as client:
        first = client.recordings.list(
            status="ready",
            created_gte=datetime(2026, 3, 1, tzinfo=UTC),
            created_lt=1_775_000_000,
            limit=2,
        )
        assert [r.id for r in first.data] == ["rec_005", "rec_004"] and first.has_more
        everything = [r.id for r in first]
    assert everything == ["rec_005", "rec_004", "rec_003", "rec_002", "rec_001"]
    params = [dict(r.url.params) for r in seen.requests]
    assert params[0] == {
        "status": "ready",
        "created[gte]": "2026-03-01T00:00:00Z",
        "created[lt]": "1775000000",
        "limit": "2",
    }
    assert params[1]["starting_after"] == "rec_004"
    assert params[2]["starting_after"] == "rec_002"


def test_pagination_stops_on_an_empty_page_that_claims_more() -> None:
    seen = Recorder(page([rec(1)], True, "/v1/recordings"), page([], True, "/v1/recordings"))
    with make(seen) as client:
        assert [r.id for r in client.recordings.list()] == ["rec_001"]


async def test_async_list_is_awaitable_and_async_iterable() -> None:
    seen = Recorder(
        page([rec(2)], True, "/v1/recordings"),
        page([rec(2)], True, "/v1/recordings"),
        page([rec(1)], False, "/v1/recordings"),
    )
    async with amake(seen) as client:
        first = await client.recordings.list(limit=1)
        assert [r.id for r in first.data] == ["rec_002"]
        ids = [r.id async for r in client.recordings.list(limit=1)]
    assert ids == ["rec_002", "rec_001"]


def test_models_tolerate_odd_servers() -> None:
    odd = Recording.from_dict(
        {"id": "rec_x", "size": "big", "created_at": "yesterday", "livemode": "no", "extra": 1}
    )
    assert odd.size is None and odd.created_at is None and odd.livemode is None
    assert odd.failure_reason is None
    failed = Recording.from_dict(rec(1, status="failed", failure_reason="no_audio"))
    assert failed.failure_reason == "no_audio"
    assert odd.raw["extra"] == 1
    dual = Recording.from_dict({**rec(1), "related_recordings": [rec(2, channel="agent")]})
    assert dual.related_recordings[0].channel == "agent"


def test_wait_polls_until_not_processing() -> None:
    sleeps: list[float] = []
    seen = Recorder(
        httpx.Response(200, json=rec(1, status="processing")),
        httpx.Response(200, json=rec(1, status="ready")),
    )
    with make(seen, sleeps) as client:
        assert client.recordings.wait("rec_001", poll_interval=0.25).status == "ready"
    assert sleeps == [0.25]


def test_download_link_follows_no_redirect() -> None:
    seen = Recorder(
        httpx.Response(202, json={"id": "rec_1", "status": "processing"}),
        httpx.Response(302, headers={"location": "https://files.example/x.wav?sig=1"}),
    )
    with make(seen) as client:
        with pytest.raises(RecordingNotReadyError):
            client.recordings.download_link("rec_1", format="wav")
        url = client.recordings.download_link("rec_1", format="wav", sample_rate=16000)
    assert url == "https://files.example/x.wav?sig=1"
    assert dict(seen.requests[1].url.params) == {"format": "wav", "sample_rate": "16000"}


# -- webhook endpoints (spec §7; not on the server yet) ----------------------------------------

ENDPOINT = {
    "id": "wh_01J",
    "object": "webhook_endpoint",
    "url": "https://crm.example/hooks",
    "enabled_events": ["recording.ready", "recording.failed"],
    "created_at": "2026-03-26T11:04:20Z",
}


def test_webhook_endpoints() -> None:
    seen = Recorder(
        httpx.Response(201, json={**ENDPOINT, "secret": "whsec_abc"}),
        page([ENDPOINT], False, "/v1/webhook_endpoints"),
        httpx.Response(200, json=ENDPOINT),
        httpx.Response(200, json={"id": "wh_01J", "object": "webhook_endpoint", "deleted": True}),
    )
    with make(seen) as client:
        created = client.webhook_endpoints.create(
            url="https://crm.example/hooks", enabled_events=["recording.ready", "recording.failed"]
        )
        listed = list(client.webhook_endpoints.list(limit=10))
        got = client.webhook_endpoints.retrieve("wh_01J")
        gone = client.webhook_endpoints.delete("wh_01J")
    assert isinstance(created, WebhookEndpoint)
    assert created.secret == "whsec_abc"
    assert created.enabled_events == ("recording.ready", "recording.failed")
    assert listed == [got] and got.secret is None
    assert gone.deleted and gone.object == "webhook_endpoint"
    assert [(r.method, r.url.path) for r in seen.requests] == [
        ("POST", "/v1/webhook_endpoints"),
        ("GET", "/v1/webhook_endpoints"),
        ("GET", "/v1/webhook_endpoints/wh_01J"),
        ("DELETE", "/v1/webhook_endpoints/wh_01J"),
    ]
    assert json.loads(seen.requests[0].content) == {
        "url": "https://crm.example/hooks",
        "enabled_events": ["recording.ready", "recording.failed"],
    }
    assert "idempotency-key" in seen.requests[0].headers


async def test_webhook_endpoints_async() -> None:
    seen = Recorder(
        httpx.Response(201, json={**ENDPOINT, "secret": "whsec_abc"}),
        page([ENDPOINT], False, "/v1/webhook_endpoints"),
        httpx.Response(200, json={"id": "wh_01J", "object": "webhook_endpoint", "deleted": True}),
    )
    async with amake(seen) as client:
        created = await client.webhook_endpoints.create(
            url="https://crm.example/hooks", enabled_events=["recording.ready"]
        )
        ids = [e.id async for e in client.webhook_endpoints.list()]
        gone = await client.webhook_endpoints.delete("wh_01J")
    assert created.secret == "whsec_abc" and ids == ["wh_01J"] and gone.deleted


async def test_async_retries_and_errors() -> None:
    sleeps: list[float] = []
    seen = Recorder(
        error(503, "storage_unavailable", type_="api_error", retry_after=2),
        httpx.Response(200, json=rec(1)),
        error(404, "resource_missing", param="recording_id"),
    )
    async with amake(seen, sleeps) as client:
        assert (await client.recordings.retrieve("rec_001")).id == "rec_001"
        with pytest.raises(NotFoundError):
            await client.recordings.retrieve("rec_404")
    assert sleeps == [pytest.approx(2.1)]
