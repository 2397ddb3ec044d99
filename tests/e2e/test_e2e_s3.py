"""`kallrec serve` on S3 (moto's server mode on loopback): serving, an outage, a migration."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import soundfile as sf

from tests.e2e.helpers import (
    HTTP_TIMEOUT,
    assert_error,
    assert_mp3_duration,
    auth,
    decode_mp3,
    download,
    import_ready,
    run_cli,
    sha256,
    speech_like,
    write_wav,
)
from tests.storage.moto_s3 import MotoS3

pytestmark = pytest.mark.e2e


@pytest.fixture
def moto() -> Iterator[MotoS3]:
    """A store of the test's own: it is stopped and started again."""
    server = MotoS3().start()
    try:
        yield server
    finally:
        server.stop()


def _stored(moto: MotoS3, bucket: str, recording_id: str) -> bytes:
    (key,) = [k for k in moto.keys(bucket) if k.endswith(f"/{recording_id}.mp3")]
    return moto.read(bucket, key)


def _get(url: str, key: str, **headers: str) -> requests.Response:
    return requests.get(url, headers={**auth(key), **headers}, timeout=HTTP_TIMEOUT)


def test_serves_from_s3_and_rides_out_a_store_outage(start_server, moto, tmp_path: Path) -> None:
    bucket = moto.create_bucket()
    server = start_server(moto.env(f"s3://{bucket}/kallrec"))
    key = server.create_key("acme")
    rec = import_ready(server, key, write_wav(tmp_path / "call.wav", speech_like(12), 8000))
    url = server.audio_url(rec["id"])

    body = download(server, key, rec["id"])
    assert body == _stored(moto, bucket, rec["id"])
    assert len(body) == rec["size"]
    decoded = decode_mp3(body)
    assert decoded.sample_rate == 8000
    assert_mp3_duration(decoded.duration, 12)

    head = requests.head(url, headers=auth(key), timeout=HTTP_TIMEOUT)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(body))
    assert head.headers["ETag"] == f'"{sha256(body)}"'
    part = _get(url, key, Range="bytes=1000-4999")
    assert part.status_code == 206 and part.content == body[1000:5000]
    assert part.headers["Content-Range"] == f"bytes 1000-4999/{len(body)}"
    assert _get(url, key, **{"If-None-Match": head.headers["ETag"]}).status_code == 304

    # The demo call made at first start went to the bucket too.
    demo = server.demo
    assert download(server, demo.key, demo.recording_id) == _stored(moto, bucket, demo.recording_id)

    moto.stop()
    down = _get(url, key)
    error = assert_error(down, 503, "storage_unavailable", error_type="api_error")
    assert int(down.headers["Retry-After"]) == error["retry_after"] > 0
    assert requests.get(server.url("/readyz"), timeout=HTTP_TIMEOUT).status_code == 503
    assert _get(url, key, Range="bytes=0-99").status_code == 503

    moto.start()  # same port, same objects; kallrec is not restarted
    assert requests.get(server.url("/readyz"), timeout=HTTP_TIMEOUT).status_code == 200
    assert download(server, key, rec["id"]) == body
    assert _get(url, key, Range="bytes=-100").content == body[-100:]

    # /download converts once into the bucket and redirects to a signed URL.
    converted = _get(
        server.url(f"/v1/recordings/{rec['id']}/download?format=wav&sample_rate=16000"), key
    )
    assert converted.status_code == 200 and converted.history[0].status_code == 302
    assert converted.headers["Content-Type"] == "audio/wav"
    assert int(converted.headers["Content-Length"]) == len(converted.content)
    assert sf.info(io.BytesIO(converted.content)).samplerate == 16000
    assert f"kallrec/converted/{rec['id']}/16000.wav" in moto.keys(bucket)


def test_migrate_local_to_s3_then_serve_from_s3(start_server, moto, tmp_path: Path) -> None:
    local = start_server()
    key = local.create_key("acme")
    rec = import_ready(local, key, write_wav(tmp_path / "call.wav", speech_like(8, seed=3), 8000))
    before = download(local, key, rec["id"])
    demo = local.demo
    demo_before = download(local, demo.key, demo.recording_id)

    bucket = moto.create_bucket()
    target = f"s3://{bucket}/migrated"
    s3_env = {k: v for k, v in moto.env(target).items() if k != "KALLREC_STORAGE_URL"}
    # While the server runs: the local storage stays the one it reads.
    done = run_cli(local.data_dir, "storage", "migrate", "--to", target, env=s3_env)
    assert f"KALLREC_STORAGE_URL={target}" in done.stdout
    assert "0 failed" in done.stdout
    assert download(local, key, rec["id"]) == before
    migrated = {k.removeprefix("migrated/") for k in moto.keys(bucket)}
    assert migrated == local.audio_files()

    again = run_cli(local.data_dir, "storage", "migrate", "--to", target, env=s3_env)
    assert " 0 copied" in again.stdout

    local.stop()
    on_s3 = start_server(moto.env(target), data_dir=local.data_dir)
    assert download(on_s3, key, rec["id"]) == before
    assert download(on_s3, demo.key, demo.recording_id) == demo_before
    part = _get(on_s3.audio_url(rec["id"]), key, Range="bytes=500-")
    assert part.status_code == 206 and part.content == before[500:]
