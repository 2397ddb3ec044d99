"""A hung object store against `kallrec serve` on its defaults (issue 11, item 12).

The S3 endpoint (moto, its own process) is SIGSTOPped: its port still accepts connections, the
kernel completes the handshake, and nothing ever answers. Every request that needs storage must
answer `503 storage_unavailable` with `Retry-After` within the first-byte timeout (5 s), not
after the 30 s request timeout it took before; once the store resumes, everything works again
without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    assert_error,
    auth,
    download,
    import_ready,
    speech_like,
    write_wav,
)
from tests.storage.moto_s3 import MotoProcess

pytestmark = pytest.mark.e2e

# The default first-byte timeout is 5 s; "well under 10 s" leaves room for a busy machine.
ANSWER_WITHIN = 10.0


@pytest.fixture
def moto() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    try:
        yield server
    finally:
        server.stop()  # resumes it first if a test left it stopped


def _timed(request: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = request()
    return response, time.monotonic() - started


def test_a_hung_store_is_a_quick_503_everywhere_and_forgotten_once_it_resumes(
    start_server, moto: MotoProcess, tmp_path: Path
) -> None:
    bucket = moto.create_bucket()
    server = start_server(moto.env(f"s3://{bucket}/kallrec"))
    key = server.create_key("acme")
    rec = import_ready(server, key, write_wav(tmp_path / "call.wav", speech_like(6), 8000))
    audio = server.audio_url(rec["id"])
    body = download(server, key, rec["id"])

    def download_url(rate: int) -> str:
        return server.url(f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate={rate}")

    # A conversion kept in the bucket, and the signed link to it.
    kept = requests.get(download_url(16000), headers=auth(key), timeout=HTTP_TIMEOUT)
    assert kept.status_code == 200 and kept.history[0].status_code == 302
    signed_link = kept.history[0].headers["Location"]

    def get(url: str, **headers: str) -> Callable[[], requests.Response]:
        return lambda: requests.get(
            server.url(url) if url.startswith("/") else url,
            headers=headers,
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )

    requests_while_hung = {
        "full download": get(audio, **auth(key)),
        "seek": get(audio, Range="bytes=100-199", **auth(key)),
        "open-ended range": get(audio, Range="bytes=1000-", **auth(key)),
        "HEAD": lambda: requests.head(audio, headers=auth(key), timeout=HTTP_TIMEOUT),
        "kept conversion": get(download_url(16000), **auth(key)),
        "new conversion": get(download_url(48000), **auth(key)),
        "signed link": get(signed_link),
        "readiness": get("/readyz"),
    }
    moto.pause()
    try:
        # All at once: a hung store must not make requests queue behind each other either.
        with ThreadPoolExecutor(len(requests_while_hung)) as pool:
            futures = {name: pool.submit(_timed, r) for name, r in requests_while_hung.items()}
            answers = {name: future.result() for name, future in futures.items()}
        health, health_took = _timed(get("/healthz"))  # no storage involved: no wait at all
    finally:
        moto.resume()

    for name, (response, took) in answers.items():
        assert took < ANSWER_WITHIN, f"{name}: answered after {took:.1f} s"
        assert response.status_code == 503, (name, response.status_code, response.text)
        if name == "readiness":
            assert response.json()["checks"]["storage"].startswith("unavailable")
        elif name == "HEAD":
            assert int(response.headers["Retry-After"]) > 0
        else:
            error = assert_error(response, 503, "storage_unavailable", error_type="api_error")
            assert int(response.headers["Retry-After"]) == error["retry_after"] > 0, name
    assert health.status_code == 200 and health_took < ANSWER_WITHIN

    # Nothing was remembered about the outage: the next requests simply work.
    assert requests.get(server.url("/readyz"), timeout=HTTP_TIMEOUT).status_code == 200
    assert download(server, key, rec["id"]) == body
    again = requests.get(download_url(16000), headers=auth(key), timeout=HTTP_TIMEOUT)
    assert again.status_code == 200 and again.content == kept.content
    fresh = requests.get(download_url(48000), headers=auth(key), timeout=HTTP_TIMEOUT)
    assert fresh.status_code == 200 and fresh.headers["Content-Type"] == "audio/wav"
