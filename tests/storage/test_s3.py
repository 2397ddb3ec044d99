"""What the contract suite cannot say about S3: bounded memory, outages, presigned URLs."""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import numpy as np
import pytest

from kallrec.config import Settings
from kallrec.storage import StorageError, open_storage
from kallrec.storage.migrate import list_objects
from kallrec.storage.s3 import READ_CHUNK, S3Storage, parse_s3_url
from tests.storage.conftest import s3_storage
from tests.storage.moto_s3 import MotoProcess, MotoS3

MB = 1024 * 1024


def _file(tmp_path: Path, data: bytes, name: str = "src.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def moto_process() -> Iterator[MotoProcess]:
    server = MotoProcess().start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_20_mb_object_streams_in_bounded_chunks(
    moto_process: MotoProcess, tmp_path: Path
) -> None:
    # moto runs in another process here, so that tracemalloc sees only the client's memory.
    s3 = s3_storage(moto_process)
    data = np.random.default_rng(1).integers(0, 256, 20 * MB, dtype=np.uint8).tobytes()
    expected = hashlib.sha256(data).hexdigest()
    info = await s3.put_file("big.bin", _file(tmp_path, data))  # multipart (8 MiB parts)
    del data
    assert info.size == 20 * MB
    assert (await s3.stat("big.bin")).size == 20 * MB  # type: ignore[union-attr]

    digest, sizes = hashlib.sha256(), []
    tracemalloc.start()
    try:
        async for chunk in s3.iter_range("big.bin", 0, 20 * MB):
            digest.update(chunk)
            sizes.append(len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == expected
    assert max(sizes) <= READ_CHUNK and len(sizes) == 20
    assert peak < 4 * MB, f"peak {peak} bytes: the object was buffered"

    # A range in the middle, across chunk boundaries.
    part = b"".join([c async for c in s3.iter_range("big.bin", 3 * MB - 7, 5 * MB + 11)])
    assert len(part) == 2 * MB + 18


async def test_keys_live_under_the_prefix(moto_s3: MotoS3, tmp_path: Path) -> None:
    store = s3_storage(moto_s3, prefix="/tenant/a/")
    await store.put_file("recordings/org_1/rec 1.mp3", _file(tmp_path, b"abc"))
    assert moto_s3.keys(store.bucket) == {"tenant/a/recordings/org_1/rec 1.mp3": 3}
    assert [o.key for o in await list_objects(store)] == ["recordings/org_1/rec 1.mp3"]


async def test_store_down_raises_storage_error_and_recovers(
    private_moto: MotoS3, tmp_path: Path
) -> None:
    store = s3_storage(private_moto)
    await store.put_file("k", _file(tmp_path, b"hello"))
    private_moto.stop()
    started = time.monotonic()
    with pytest.raises(StorageError):
        await store.stat("k")
    with pytest.raises(StorageError):
        await store.ping()
    with pytest.raises(StorageError):
        [c async for c in store.iter_range("k", 0, 5)]
    with pytest.raises(StorageError):
        await store.read_all("k")
    with pytest.raises(StorageError):
        await store.delete("k")
    src = _file(tmp_path, b"new")
    with pytest.raises(StorageError):
        await store.put_file("k2", src)
    assert src.exists()  # a failed put leaves the source to the caller
    assert time.monotonic() - started < 10, "requests must fail fast while the store is down"

    private_moto.start()  # same port, same data: the store is back
    await store.ping()
    assert (await store.stat("k")).size == 5  # type: ignore[union-attr]
    assert await store.read_all("k") == b"hello"
    await store.put_file("k2", src)
    assert await store.read_all("k2") == b"new"


async def test_a_hung_store_is_a_storage_error_after_the_first_byte_timeout(
    moto_process: MotoProcess, tmp_path: Path
) -> None:
    """SIGSTOP: connections are accepted, nothing answers. Every request that waits for an
    answer gives up after first_byte_timeout (here 1 s), not obstore's 30 s request timeout."""
    store = s3_storage(moto_process, first_byte_timeout=1.0)
    await store.put_file("k", _file(tmp_path, b"hello"))
    moto_process.pause()
    try:
        waits = {
            "stat": store.stat("k"),
            "ping": store.ping(),
            "read": store.read_range("k", 0, 5),
            "read_all": store.read_all("k"),
            "fetch": store.fetch_to("k", tmp_path / "copy"),
            "delete": store.delete("k"),
        }
        for call in waits.values():
            with pytest.raises(StorageError, match=r"no answer within 1 s"):
                await call
    finally:
        moto_process.resume()
    # Nothing remembered: back at once. (The DELETE the store received while stopped is carried
    # out when it resumes, though kallrec had given up on it: a timed-out request may still
    # happen, as with any timeout.)
    await store.ping()
    await store.put_file("k", _file(tmp_path, b"again"))
    assert await store.read_all("k") == b"again"


async def test_a_body_may_take_longer_than_the_first_byte_timeout(
    moto_process: MotoProcess, tmp_path: Path
) -> None:
    """Only the wait for each answer is bounded: a slow reader of a long object is fine."""
    store = s3_storage(moto_process, first_byte_timeout=0.5)
    data = bytes(range(256)) * (3 * READ_CHUNK // 256)
    await store.put_file("big", _file(tmp_path, data))
    received = []
    async for chunk in store.iter_range("big", 0, len(data)):
        received.append(chunk)
        await anyio.sleep(0.6)  # a client slower than the timeout, chunk after chunk
    assert b"".join(received) == data


async def test_an_object_replaced_mid_read_is_an_error_not_a_mix(
    s3: S3Storage, tmp_path: Path
) -> None:
    await s3.put_file("k", _file(tmp_path, b"a" * (3 * READ_CHUNK)))
    chunks = s3.iter_range("k", 0, 3 * READ_CHUNK)
    assert await anext(chunks) == b"a" * READ_CHUNK
    await s3.put_file("k", _file(tmp_path, b"b" * (3 * READ_CHUNK)))
    with pytest.raises(StorageError):
        await anext(chunks)
    await chunks.aclose()


async def test_presigned_url_serves_the_object_with_the_forced_headers(
    s3: S3Storage, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 64
    await s3.put_file("recordings/org_1/rec_1.mp3", _file(tmp_path, data))
    url = s3.presign_get(
        "recordings/org_1/rec_1.mp3",
        filename="recording-sess_1.mp3",
        content_type="audio/mpeg",
        expires=60,
    )
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    assert url.startswith(f"{s3.options.endpoint_url}/{s3.bucket}/kallrec/recordings/")
    async with httpx.AsyncClient() as client:
        full = await client.get(url)
        part = await client.get(url, headers={"Range": "bytes=100-199"})
    assert full.status_code == 200 and full.content == data
    assert full.headers["content-disposition"] == 'attachment; filename="recording-sess_1.mp3"'
    assert full.headers["content-type"] == "audio/mpeg"
    assert full.headers["cache-control"] == "private"
    assert part.status_code == 206 and part.content == data[100:200]


def test_presigning_needs_static_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    store = S3Storage("bkt")
    with pytest.raises(StorageError, match="access key"):
        store.presign_get("k", filename="f.mp3", content_type="audio/mpeg", expires=60)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    url = store.presign_get("k", filename="f.mp3", content_type="audio/mpeg", expires=60)
    assert url.startswith("https://s3.us-east-1.amazonaws.com/bkt/k?")
    assert "AKID%2F" in url


def test_virtual_hosted_urls() -> None:
    from kallrec.storage.s3 import S3Options

    options = S3Options(
        endpoint_url="https://minio.example:9000",
        region="eu-west-1",
        access_key_id="AKID",
        secret_access_key="SECRET",
        addressing_style="virtual",
    )
    store = S3Storage("bkt", "pre", options)
    url = store.presign_get("a b.mp3", filename="x.mp3", content_type="audio/mpeg", expires=60)
    assert url.startswith("https://bkt.minio.example:9000/pre/a%20b.mp3?")


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bkt") == ("bkt", "")
    assert parse_s3_url("s3://bkt/a/b/") == ("bkt", "a/b")
    with pytest.raises(ValueError, match="bucket"):
        parse_s3_url("s3:///prefix")


def test_open_storage_takes_the_s3_settings(moto_s3: MotoS3, tmp_path: Path) -> None:
    env = moto_s3.env("s3://bkt/some/prefix")
    settings = Settings.from_env({k: v for k, v in env.items() if k != "KALLREC_STORAGE_URL"})
    store = open_storage("s3://bkt/some/prefix", settings)
    assert isinstance(store, S3Storage)
    assert (store.bucket, store.prefix) == ("bkt", "some/prefix")
    assert store.options.endpoint_url == moto_s3.endpoint
    assert store.local_path("k") is None


def test_redirect_mode_needs_a_key_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env({}, storage_url="s3://bkt/p", s3_redirect="302")
    with pytest.raises(ValueError, match="access key"):
        open_storage(settings.resolved_storage_url, settings)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"storage_url": "s3:///nobucket"}, "names no bucket"),
        ({"s3_endpoint_url": "minio:9000"}, "http:// or https://"),
        ({"s3_access_key_id": "AKID"}, "both"),
        ({"s3_addressing_style": "dns"}, "'path' or 'virtual'"),
        ({"s3_redirect": "301", "storage_url": "s3://b"}, "'off', '302' or '307'"),
        ({"s3_redirect": "302"}, "needs KALLREC_STORAGE_URL=s3://"),
        ({"download_url_ttl_seconds": 0}, "between 1 and 604800"),
        ({"s3_redirect_ttl_seconds": 8 * 86400}, "between 1 and 604800"),
    ],
)
def test_settings_are_validated(overrides: dict[str, object], message: str) -> None:
    from kallrec.config import SettingsError

    with pytest.raises(SettingsError, match=message):
        Settings.from_env({}, **overrides)


def test_settings_from_the_environment_and_secrets_stay_out_of_repr() -> None:
    settings = Settings.from_env(
        {
            "KALLREC_STORAGE_URL": "s3://bkt/p",
            "KALLREC_S3_SECRET_ACCESS_KEY": "very-secret",
            "KALLREC_S3_ACCESS_KEY_ID": "AKID",
            "KALLREC_S3_REDIRECT": "307",
            "KALLREC_DOWNLOAD_URL_TTL_SECONDS": "600",
            "KALLREC_DOWNLOAD_SIGNING_SECRET": "also-secret",
        }
    )
    assert (settings.s3_redirect, settings.download_url_ttl_seconds) == ("307", 600)
    assert "very-secret" not in repr(settings) and "also-secret" not in repr(settings)
