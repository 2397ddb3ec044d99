"""The server as an operator and a monitoring system see it: health, metrics, OpenAPI, error
envelopes for unknown routes, request ids, rate limits, and the first-start demo."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import (
    AUDIO_ROUTE,
    HTTP_TIMEOUT,
    Server,
    assert_error,
    auth,
    decode_mp3,
    download,
    get_recording,
    import_ready,
    settled_metrics,
    speech_like,
    write_wav,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def key(server: Server) -> str:
    return server.create_key("acme")


@pytest.fixture(scope="module")
def rec(server: Server, key: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    wav = tmp_path_factory.mktemp("svc") / "call.wav"
    return import_ready(server, key, write_wav(wav, speech_like(4.0, seed=21), 8000))


def metric_samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(settled_metrics(server)):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# -- health and description ------------------------------------------------------------------


def test_healthz_is_200(server: Server) -> None:
    r = requests.get(server.url("/healthz"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_readyz_is_200_with_database_and_storage_checks(server: Server) -> None:
    r = requests.get(server.url("/readyz"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok", "storage": "ok"}


def test_metrics_count_audio_requests_bytes_and_recordings(
    server: Server, key: str, rec: dict[str, Any]
) -> None:
    before = metric_samples(server)
    body = download(server, key, rec["id"])
    partial = requests.get(
        server.audio_url(rec["id"]), headers={**auth(key), "Range": "bytes=0-99"}, timeout=30
    )
    assert partial.status_code == 206
    after = metric_samples(server)

    ok = {"route": AUDIO_ROUTE, "method": "GET", "status": "200"}
    part = {**ok, "status": "206"}
    name = "kallrec_http_requests_total"
    assert sample(after, name, **ok) - sample(before, name, **ok) == 1
    assert sample(after, name, **part) - sample(before, name, **part) == 1
    served = "kallrec_audio_bytes_served_total"
    assert sample(after, served) > 0
    assert sample(after, served) - sample(before, served) == len(body) + 100
    assert sample(after, "kallrec_recordings", status="ready") >= 2  # the demo call and ours
    # The route label is the template, never the id (bounded cardinality, no ids in metrics).
    assert not any(rec["id"] in str(labels) for _, labels in after)


def test_openapi_json_is_openapi_3_1(server: Server) -> None:
    r = requests.get(server.url("/openapi.json"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    doc = r.json()
    assert doc["openapi"].startswith("3.1.")
    assert AUDIO_ROUTE in doc["paths"]
    assert {"get", "head"} <= set(doc["paths"][AUDIO_ROUTE])
    docs = requests.get(server.url("/docs"), timeout=HTTP_TIMEOUT)
    assert docs.status_code == 200 and "/openapi.json" in docs.text


# -- envelopes and request ids -----------------------------------------------------------------


def test_unknown_route_is_404_envelope(server: Server, key: str) -> None:
    for path in ("/nope", "/v1/recordingz", "/v2/recordings"):
        r = requests.get(server.url(path), headers=auth(key), timeout=HTTP_TIMEOUT)
        assert_error(r, 404, r.json()["error"]["code"], error_type="invalid_request_error")


def test_wrong_method_is_405_envelope(server: Server, key: str, rec: dict[str, Any]) -> None:
    for method, path in [
        ("PUT", f"/v1/recordings/{rec['id']}/audio"),
        ("POST", "/healthz"),
        ("PATCH", "/v1/recordings"),
    ]:
        r = requests.request(method, server.url(path), headers=auth(key), timeout=HTTP_TIMEOUT)
        assert_error(r, 405, "method_not_allowed", error_type="invalid_request_error")
        assert "GET" in r.headers["Allow"] or "POST" in r.headers["Allow"]


def test_every_response_has_a_unique_request_id(
    server: Server, key: str, rec: dict[str, Any]
) -> None:
    audio = server.audio_url(rec["id"])
    calls = [
        ("GET", server.url("/healthz"), {}),
        ("GET", server.url("/readyz"), {}),
        ("GET", server.url("/metrics"), {}),
        ("GET", server.url("/openapi.json"), {}),
        ("GET", server.url("/docs"), {}),
        ("GET", server.url("/nope"), {}),
        ("DELETE", server.url("/healthz"), {}),
        ("GET", audio, {}),
        ("GET", audio, auth(key)),
        ("HEAD", audio, auth(key)),
        ("GET", audio, {**auth(key), "Range": "bytes=0-0"}),
        ("GET", audio, {**auth(key), "Range": "bytes=99999999-"}),
        ("GET", audio, {**auth(key), "If-None-Match": "*"}),
        ("GET", server.url(f"/v1/recordings/{rec['id']}"), auth(key)),
        ("GET", server.url("/v1/recordings"), auth(key)),
        ("GET", server.url("/v1/recordings?limit=0"), auth(key)),
    ]
    seen = set()
    for method, url, headers in calls:
        r = requests.request(method, url, headers=headers, timeout=HTTP_TIMEOUT)
        request_id = r.headers.get("X-Request-ID", "")
        assert request_id.startswith("req_"), (method, url, r.status_code, r.headers)
        seen.add(request_id)
    assert len(seen) == len(calls)


def test_rate_limit_headers_on_authenticated_responses(
    server: Server, key: str, rec: dict[str, Any]
) -> None:
    for r in (
        requests.get(server.audio_url(rec["id"]), headers=auth(key), timeout=30),
        requests.get(server.url(f"/v1/recordings/{rec['id']}"), headers=auth(key), timeout=30),
        requests.get(server.url("/v1/recordings/rec_nope"), headers=auth(key), timeout=30),
    ):
        assert r.status_code in (200, 404)
        assert int(r.headers["X-RateLimit-Limit"]) > 0
        assert 0 <= int(r.headers["X-RateLimit-Remaining"]) < int(r.headers["X-RateLimit-Limit"])
        assert int(r.headers["X-RateLimit-Reset"]) > time.time() - 1


def test_keys_never_appear_in_the_server_log_or_metrics(
    server: Server, key: str, rec: dict[str, Any]
) -> None:
    bad = key[:-4] + "abcd"
    requests.get(server.audio_url(rec["id"]), headers=auth(key), timeout=30).close()
    requests.get(server.audio_url(rec["id"]), headers=auth(bad), timeout=30).close()
    metrics = requests.get(server.url("/metrics"), timeout=30).text
    for secret in (key, bad, key[8:]):
        assert secret not in server.log_text()
        assert secret not in metrics


# -- rate limiting -----------------------------------------------------------------------------


def test_sixth_request_in_a_minute_is_429(start_server: Any) -> None:
    limited = start_server({"KALLREC_RATE_LIMIT_PER_MINUTE": "5"})
    key = limited.create_key("acme")
    url = limited.url("/v1/recordings")
    # The limiter uses fixed one-minute windows: stay clear of a window boundary.
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.05)
    remaining = []
    for _ in range(5):
        r = requests.get(url, headers=auth(key), timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.headers["X-RateLimit-Limit"] == "5"
        remaining.append(int(r.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    reset = int(r.headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61

    r = requests.get(url, headers=auth(key), timeout=HTTP_TIMEOUT)
    error = assert_error(r, 429, "rate_limit_exceeded", error_type="rate_limit_error")
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.headers["X-RateLimit-Limit"] == "5"
    assert int(r.headers["X-RateLimit-Reset"]) == reset
    retry_after = int(r.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert error["retry_after"] == retry_after

    # Per key: another key of the same organization is not affected.
    other = limited.create_key("acme")
    assert requests.get(url, headers=auth(other), timeout=HTTP_TIMEOUT).status_code == 200


# -- first start ---------------------------------------------------------------------------------


def test_demo_bootstrap_curl_example_works(server: Server, tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    demo = server.demo
    assert demo.key.startswith("sk_test_")
    log = server.log_text()
    assert demo.key in log and demo.recording_id in log
    example = next(line for line in log.splitlines() if line.strip().startswith("try:"))
    command = shlex.split(example.split("try:", 1)[1])
    assert command[0] == "curl" and server.audio_url(demo.recording_id) in command
    done = subprocess.run(
        [curl, "-sS", "-f", *command[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    body = (tmp_path / "recording.mp3").read_bytes()
    rec = get_recording(server, demo.key, demo.recording_id)
    assert rec["status"] == "ready" and rec["session_id"] == demo.session_id
    assert len(body) == rec["size"]
    decoded = decode_mp3(body)
    assert (decoded.sample_rate, decoded.channels) == (8000, 1)
    assert decoded.duration == pytest.approx(rec["duration"], abs=0.25)
    assert decoded.duration > 5


@pytest.mark.xfail(
    reason="Known limitation (README, 'Rate limits'): on SQLite the limiter counts per worker "
    "process, so with --workers 2 a key limited to 5/min gets about 10 requests through; "
    "PostgreSQL deployments share the counts",
    raises=AssertionError,
    strict=True,
)
def test_rate_limit_is_per_key_across_workers(start_server: Any) -> None:
    limited = start_server({"KALLREC_RATE_LIMIT_PER_MINUTE": "5"}, workers=2)
    key = limited.create_key("acme")
    if time.time() % 60 > 55:
        time.sleep(60 - time.time() % 60 + 0.05)

    def status(_: int) -> int:
        r = requests.get(limited.url("/v1/recordings"), headers=auth(key), timeout=HTTP_TIMEOUT)
        return r.status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        codes = list(pool.map(status, range(60)))
    if set(codes) - {200, 429}:
        pytest.fail(f"unexpected statuses: {codes}")
    assert codes.count(200) == 5, codes
