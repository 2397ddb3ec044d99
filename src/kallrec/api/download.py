"""GET /v1/recordings/{id}/download (the older Kallglot form) and the signed URL it redirects to.

``/download?format=mp3|wav|ogg&sample_rate=8000|16000|22050|44100|48000`` checks the key, the
recording and its status like /audio, makes (or finds) the converted file in storage, and answers
``302`` to a URL valid for ``download_url_ttl_seconds`` (1 hour):

* with ``KALLREC_S3_REDIRECT`` on, a presigned S3 URL of the converted object (S3 sends the bytes);
* otherwise ``/v1/recordings/{id}/download/file?…&expires=…&signature=…`` (download_links.py),
  which needs no key and serves the file with its Content-Type, Content-Length,
  Content-Disposition, HEAD and single byte ranges.

A signed URL that was altered or forged answers ``403 invalid_signature``; a genuine one past its
``expires`` answers ``403 expired_signature`` (ask /download for a new one). Both are checked
before any lookup, so a bad link reveals nothing about the recording.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from kallrec import timeutil
from kallrec.api.audio import servable
from kallrec.api.audio_body import HeadersOnly, StoredBody
from kallrec.api.common import authorize, json_response, runtime
from kallrec.api.objects import recording_object
from kallrec.api.representation import encode_headers
from kallrec.audio.formats import FORMATS, SAMPLE_RATES
from kallrec.converted import Converted, ensure_converted
from kallrec.db.models import Recording
from kallrec.download_links import ExpiredLink, InvalidLink, signed_path, signing_secret, verify
from kallrec.errors import (
    InvalidRequest,
    PermissionDenied,
    RangeNotSatisfiable,
    StorageUnavailable,
)
from kallrec.http.ranges import RangeNotSatisfiable as Unsatisfiable
from kallrec.http.ranges import parse_range
from kallrec.runtime import Runtime
from kallrec.storage import Presigning, StorageError

PROCESSING_RETRY_AFTER = 2
STORAGE_RETRY_AFTER = 5


async def recording_download(request: Request) -> Response:
    principal = await authorize(request, "recordings:read")
    rt = runtime(request)
    recording_id = request.path_params["recording_id"]
    fmt, sample_rate = _conversion_params(request)
    rec = await rt.get_recording(principal.org_id, principal.livemode, recording_id)
    if rec is not None and rec.status == "processing":
        response = json_response(recording_object(rec), 202)
        response.headers["retry-after"] = str(PROCESSING_RETRY_AFTER)
        return response
    rec = servable(rec, recording_id)
    converted = await _converted(rt, rec, fmt, sample_rate)
    ttl = rt.settings.download_url_ttl_seconds
    expires = int(timeutil.now()) + ttl
    if rt.settings.s3_redirect != "off" and isinstance(rt.storage, Presigning):
        location = rt.storage.presign_get(
            converted.key,
            filename=converted.filename,
            content_type=converted.content_type,
            expires=ttl,
        )
    else:
        secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
        path = signed_path(secret, rec.id, fmt, sample_rate, expires)
        # Relative unless the public URL is known: clients resolve it against the URL they
        # called, which stays right behind any proxy.
        location = (rt.settings.public_url.rstrip("/") + path) if rt.settings.public_url else path
    response = json_response({"url": location, "expires_at": timeutil.iso(expires)}, 302)
    response.headers["location"] = location
    response.headers["cache-control"] = "private, no-store"
    return response


async def download_file(request: Request) -> ASGIApp:
    rt = runtime(request)
    recording_id = request.path_params["recording_id"]
    q = request.query_params
    secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
    try:
        fmt, sample_rate = verify(
            secret,
            recording_id,
            q.get("format"),
            q.get("sample_rate"),
            q.get("expires"),
            q.get("signature"),
            timeutil.now(),
        )
    except InvalidLink:
        raise PermissionDenied(
            "This download link is not valid: it was altered or is incomplete.",
            code="invalid_signature",
            param="signature",
        ) from None
    except ExpiredLink:
        raise PermissionDenied(
            "This download link has expired; request a new one from "
            f"/v1/recordings/{recording_id}/download.",
            code="expired_signature",
            param="expires",
        ) from None
    if fmt not in FORMATS or sample_rate not in SAMPLE_RATES:  # signed, but not by this version
        raise PermissionDenied("This download link is not valid.", code="invalid_signature")
    rec = await anyio.to_thread.run_sync(rt.repo.get_recording_any, recording_id)
    if rec is not None and rec.deleted_at is not None:
        rec = None
    converted = await _converted(rt, servable(rec, recording_id), fmt, sample_rate)
    return _file_response(request, rt, converted)


def _conversion_params(request: Request) -> tuple[str, int]:
    q = request.query_params
    fmt = q.get("format", "mp3")
    if fmt not in FORMATS:
        raise InvalidRequest(
            f"Invalid format: {fmt!r}. Expected one of {', '.join(FORMATS)}.", param="format"
        )
    raw_rate = q.get("sample_rate", "8000")
    if not raw_rate.isdigit() or int(raw_rate) not in SAMPLE_RATES:
        rates = ", ".join(str(r) for r in SAMPLE_RATES)
        raise InvalidRequest(
            f"Invalid sample_rate: {raw_rate!r}. Expected one of {rates}.", param="sample_rate"
        )
    return fmt, int(raw_rate)


async def _converted(rt: Runtime, rec: Recording, fmt: str, sample_rate: int) -> Converted:
    try:
        return await ensure_converted(rt, rec, fmt, sample_rate)
    except StorageError:
        raise StorageUnavailable(
            "The recording's audio cannot be read from storage right now.",
            retry_after=STORAGE_RETRY_AFTER,
        ) from None


def _file_response(request: Request, rt: Runtime, converted: Converted) -> ASGIApp:
    size, key = converted.size, converted.key
    headers = {
        "content-type": converted.content_type,
        "content-disposition": f'attachment; filename="{converted.filename}"',
        "accept-ranges": "bytes",
        "cache-control": "private",
    }
    if request.method == "HEAD":
        return HeadersOnly(200, encode_headers({**headers, "content-length": str(size)}))
    try:
        ranges = parse_range(request.headers.get("range"), size)
    except Unsatisfiable:
        raise RangeNotSatisfiable(
            f"The requested range is outside the file's {size} bytes.",
            param="Range",
            headers={"content-range": f"bytes */{size}"},
        ) from None
    count = rt.metrics.count_bytes
    if ranges is not None and len(ranges) == 1:
        start, end = ranges[0]
        return StoredBody(
            status=206,
            headers=encode_headers(
                {
                    **headers,
                    "content-length": str(end - start),
                    "content-range": f"bytes {start}-{end - 1}/{size}",
                }
            ),
            storage=rt.storage,
            key=key,
            segments=[(b"", start, end)],
            count_bytes=count,
        )
    # Several ranges: a full 200, which RFC 9110 allows (players ask for one range at a time).
    return StoredBody(
        status=200,
        headers=encode_headers({**headers, "content-length": str(size)}),
        storage=rt.storage,
        key=key,
        segments=[(b"", 0, size)],
        whole_file=rt.storage.local_path(key),
        count_bytes=count,
    )
