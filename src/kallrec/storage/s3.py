"""Audio in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2) through obstore.

- Writes are complete-or-absent: one PUT, or a multipart upload that S3 makes visible only when
  it completes.
- Reads are ranged GETs of ``READ_CHUNK`` bytes, one in flight at a time: memory stays bounded
  whatever the object's size, and a client that stalls for an hour holds one chunk and no S3
  connection (a single streaming GET would hit the request timeout, or hold a connection open).
  Every chunk after the first is conditional on the first one's ETag, so a response never mixes
  two versions of an object that was overwritten mid-read.
- Failures (refused connections, timeouts, 5xx after a few quick retries, denied credentials)
  become ``StorageError``: the API answers 503 with Retry-After. Nothing is remembered about a
  failure, so the next request after the store is back simply works.
- A store that accepts connections but does not answer (hung, overloaded, SIGSTOPped) is given
  ``first_byte_timeout`` (5 s) to answer each HEAD, GET or DELETE: the wait for the response's
  head, not its body, so a chunk of a slow but live transfer still has the whole request timeout.
  PUTs are bounded by the request timeout alone (their answer comes after the whole upload).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import anyio
import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from kallrec.storage import sigv4
from kallrec.storage.base import ObjectInfo, ObjectMissing, StorageError

if TYPE_CHECKING:  # obstore's TypedDicts exist for type checkers only
    from obstore import GetOptions
    from obstore.store import RetryConfig, S3Config

    from kallrec.config import Settings

# Same as the local backend: large enough that a range costs few requests, small enough that
# thousands of slow readers fit in memory.
READ_CHUNK = 1024 * 1024
# fetch_to (processing, migration) has no slow reader on the other end: bigger requests.
FETCH_CHUNK = 8 * 1024 * 1024
# Multipart parts for large PUTs; with the concurrency, it bounds an upload's memory.
PART_SIZE = 8 * 1024 * 1024
PART_CONCURRENCY = 4
PING_KEY = ".kallrec-ping"
T = TypeVar("T")

# A request path cannot wait out obstore's defaults (10 retries over up to 3 minutes): retry a
# couple of times quickly, then let the client retry after the 503.
_RETRY: RetryConfig = {
    "max_retries": 2,
    "retry_timeout": timedelta(seconds=5),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=1),
        "base": 2,
    },
}


@dataclass(frozen=True)
class S3Options:
    """How to reach the bucket; empty fields fall back to the AWS_* environment variables."""

    endpoint_url: str = ""
    region: str = ""
    access_key_id: str = ""
    secret_access_key: str = ""
    addressing_style: str = "path"  # or "virtual"
    connect_timeout: str = "3s"
    request_timeout: str = "30s"
    first_byte_timeout: float = 5.0  # seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Options:
        return cls(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            addressing_style=settings.s3_addressing_style,
            first_byte_timeout=settings.storage_first_byte_timeout_seconds,
        )

    @property
    def resolved_endpoint(self) -> str:
        """The settings' endpoint, else obstore's own fallbacks; empty means AWS itself."""
        endpoint = (
            self.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL")
            or os.environ.get("AWS_ENDPOINT")
            or ""
        )
        return endpoint.rstrip("/")

    @property
    def resolved_region(self) -> str:
        return (
            self.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )

    def static_credentials(self) -> sigv4.Credentials | None:
        """Keys for presigning: the settings', else AWS_ACCESS_KEY_ID & co., else None."""
        if self.access_key_id:
            return sigv4.Credentials(self.access_key_id, self.secret_access_key)
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if key and secret:
            return sigv4.Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN", ""))
        return None


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → ("bucket", "some/prefix")."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"storage URL {url!r} names no bucket: use s3://bucket/prefix")
    return bucket, prefix.strip("/")


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", options: S3Options | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = options or S3Options()
        self.virtual_hosted = self.options.addressing_style == "virtual"
        config: S3Config = {
            "region": self.options.resolved_region,
            "virtual_hosted_style_request": self.virtual_hosted,
        }
        endpoint = self.options.resolved_endpoint
        if endpoint:
            if self.virtual_hosted:  # obstore wants the bucket in a virtual-hosted endpoint
                parts = urlsplit(endpoint)
                endpoint = f"{parts.scheme}://{bucket}.{parts.netloc}{parts.path}"
            config["endpoint"] = endpoint
        if self.options.access_key_id:
            config["access_key_id"] = self.options.access_key_id
            config["secret_access_key"] = self.options.secret_access_key
        self.store = S3Store(
            bucket,
            prefix=self.prefix or None,
            config=config,
            client_options={
                # Local MinIO/moto endpoints speak plain HTTP; AWS and R2 endpoints are https.
                "allow_http": endpoint.startswith("http://"),
                "connect_timeout": self.options.connect_timeout,
                "timeout": self.options.request_timeout,
            },
            retry_config=_RETRY,
        )

    @classmethod
    def from_url(cls, url: str, options: S3Options | None = None) -> S3Storage:
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, options)

    def __repr__(self) -> str:
        return f"S3Storage(s3://{self.bucket}/{self.prefix})"

    # -- the Storage protocol ---------------------------------------------------------------------

    async def put_file(self, key: str, src: Path) -> ObjectInfo:
        size = (await anyio.Path(src).stat()).st_size
        try:
            await obstore.put_async(
                self.store,
                key,
                src,
                chunk_size=PART_SIZE,
                max_concurrency=PART_CONCURRENCY,
            )
        except (ObstoreError, OSError) as exc:
            raise StorageError(f"could not store {key}: {_reason(exc)}") from exc
        await anyio.Path(src).unlink()
        return ObjectInfo(key, size)

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            meta = await self._answer(obstore.head_async(self.store, key), f"stat {key}")
        except FileNotFoundError:
            return None
        except (ObstoreError, OSError) as exc:
            raise StorageError(f"could not stat {key}: {_reason(exc)}") from exc
        return ObjectInfo(key, int(meta["size"]))

    def local_path(self, key: str) -> str | None:
        return None

    async def iter_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        async for chunk in self._chunks(key, start, end, READ_CHUNK):
            yield chunk

    async def read_range(self, key: str, start: int, end: int) -> bytes:
        data = b"".join([chunk async for chunk in self._chunks(key, start, end, READ_CHUNK)])
        if len(data) != end - start:
            raise StorageError(f"{key} is shorter than expected")
        return data

    async def read_all(self, key: str) -> bytes:
        try:
            result = await self._answer(obstore.get_async(self.store, key), f"read {key}")
            return bytes(await result.bytes_async())
        except FileNotFoundError as exc:
            raise ObjectMissing(key) from exc
        except (ObstoreError, OSError) as exc:
            raise StorageError(f"could not read {key}: {_reason(exc)}") from exc

    async def fetch_to(self, key: str, dest: Path) -> None:
        info = await self.stat(key)
        if info is None:
            raise ObjectMissing(key)
        async with await anyio.open_file(dest, "wb") as out:
            async for chunk in self._chunks(key, 0, info.size, FETCH_CHUNK):
                await out.write(chunk)

    async def delete(self, key: str) -> None:
        try:
            await self._answer(obstore.delete_async(self.store, key), f"delete {key}")
        except FileNotFoundError:
            return
        except (ObstoreError, OSError) as exc:
            raise StorageError(f"could not delete {key}: {_reason(exc)}") from exc

    async def ping(self) -> None:
        """Reachable, and the credentials work: a HEAD answered 200 or 404 (not 403, not 5xx)."""
        await self.stat(PING_KEY)

    # -- beyond the protocol ----------------------------------------------------------------------

    def presign_get(self, key: str, *, filename: str, content_type: str, expires: int) -> str:
        """A URL any HTTP client can GET for ``expires`` seconds; S3 answers it with the given
        download filename and content type (SigV4, signed locally: no request to S3)."""
        credentials = self.options.static_credentials()
        if credentials is None:
            raise StorageError("presigning needs an access key (KALLREC_S3_ACCESS_KEY_ID)")
        full_key = f"{self.prefix}/{key}" if self.prefix else key
        origin, path = sigv4.object_url(
            endpoint=self.options.resolved_endpoint,
            bucket=self.bucket,
            key=full_key,
            region=self.options.resolved_region,
            virtual_hosted=self.virtual_hosted,
        )
        return sigv4.presign_get(
            origin=origin,
            path=path,
            region=self.options.resolved_region,
            credentials=credentials,
            expires=expires,
            params={
                "response-content-disposition": f'attachment; filename="{filename}"',
                "response-content-type": content_type,
                # Recordings are personal data: no shared caches, on this path too.
                "response-cache-control": "private",
            },
        )

    async def list_objects(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix`` (for `kallrec storage migrate`)."""
        try:
            async for batch in obstore.list(self.store, prefix or None, chunk_size=1000):
                for meta in batch:
                    yield ObjectInfo(str(meta["path"]), int(meta["size"]))
        except (ObstoreError, OSError) as exc:
            raise StorageError(f"could not list the bucket: {_reason(exc)}") from exc

    # -- internals --------------------------------------------------------------------------------

    async def _answer(self, request: Awaitable[T], doing: str) -> T:
        """The response to ``request``, or StorageError when its head does not come within
        ``first_byte_timeout`` (the request is dropped)."""
        with anyio.move_on_after(self.options.first_byte_timeout):
            return await request
        raise StorageError(
            f"could not {doing}: no answer within {self.options.first_byte_timeout:g} s"
        )

    async def _chunks(self, key: str, start: int, end: int, size: int) -> AsyncIterator[bytes]:
        etag: str | None = None
        offset = start
        while offset < end:
            stop = min(offset + size, end)
            options: GetOptions = {"range": (offset, stop)}
            if etag:
                options["if_match"] = etag
            try:
                result = await self._answer(
                    obstore.get_async(self.store, key, options=options),
                    f"read {key}",
                )
                chunk = bytes(await result.bytes_async())
            except FileNotFoundError as exc:
                raise ObjectMissing(key) from exc
            except (ObstoreError, OSError) as exc:
                raise StorageError(f"could not read {key}: {_reason(exc)}") from exc
            etag = etag or result.meta.get("e_tag")
            if not chunk:
                raise StorageError(f"{key} is shorter than expected")
            offset += len(chunk)
            yield chunk


def _reason(exc: BaseException) -> str:
    # obstore messages end in a multi-line debug dump; the first line says what happened.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
