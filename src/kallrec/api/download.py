"""GET /v1/recordings/{id}/download (the older Kallglot form) and the signed URL it redirects to.

``/download?format=mp3|wav|ogg&sample_rate=8000|16000|22050|44100|48000`` checks the key, the
recording and its status like /audio, makes (or finds) the converted file in storage, and answers
``302`` to an absolute URL valid for ``download_url_ttl_seconds`` (1 hour):

* with ``KALLREC_S3_REDIRECT`` on, a presigned S3 URL of the converted object (S3 sends the bytes);
* otherwise ``/v1/recordings/{id}/download/file?…&expires=…&signature=…`` (download_links.py),
  which needs no key and serves the file with its Content-Type, Content-Length,
  Content-Disposition, HEAD and single byte ranges.

A conversion the cache has no room for (converted.py: the quota is full of conversions being
read) is not made here: the 302 always goes to the signed URL, which converts it while sending
it, without ranges, with a Content-Length for WAV (its size is known in advance) and chunked
otherwise.

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
from kallrec.api.common import authorize, json_response, runtime
from kallrec.api.conversion_body import Converting, Pinned
from kallrec.api.public_url import public_base
from kallrec.api.representation import encode_headers
from kallrec.api.stored_body import HeadersOnly, StoredBody
from kallrec.audio.formats import FORMATS, SAMPLE_RATES
from kallrec.converted import Kept, Unkept, find_or_convert, release
from kallrec.db.models import Recording
from kallrec.download_links import ExpiredLink, InvalidLink, signed_path, signing_secret, verify
from kallrec.errors import (
    InvalidRequest,
    PermissionDenied,
    RangeNotSatisfiable,
    storage_unavailable,
)
from kallrec.http.ranges import UnsatisfiableRange, parse_range
from kallrec.runtime import Runtime
from kallrec.servable import PROCESSING_RETRY_AFTER, servable
from kallrec.storage import Presigning, StorageError
from kallrec.wire import recording_object

# The query's spellings of the rates: compared as text, so no number of any length is parsed.
_RATES = {str(rate): rate for rate in SAMPLE_RATES}


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
    presigning = rt.settings.s3_redirect != "off" and isinstance(rt.storage, Presigning)
    if isinstance(converted, Kept) and presigning:
        assert isinstance(rt.storage, Presigning)
        location = rt.storage.presign_get(
            converted.key,
            filename=converted.filename,
            content_type=converted.content_type,
            expires=ttl,
        )
        # S3 sends it to whoever holds the URL, for as long as the URL lives.
        await release(rt, converted, hold=ttl)
    else:
        if isinstance(converted, Kept):
            await release(rt, converted)  # the signed URL's request pins it again
        secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
        path = signed_path(secret, rec.id, fmt, sample_rate, expires)
        # Absolute, as Kallglot's clients expect (a Location they use as it is): the public
        # URL, else what the client called. Relative only for a request without a usable Host.
        base = public_base(request, rt.settings.public_url)
        location = base + path if base else path
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
    except InvalidLink as exc:
        raise PermissionDenied(
            "This download link is not valid: it was altered or is incomplete.",
            code="invalid_signature",
            param=exc.param,
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
    if isinstance(converted, Unkept):
        return _streamed_response(request, rt, converted)
    try:
        response = _file_response(request, rt, converted)
    except BaseException:
        await release(rt, converted)
        raise
    if request.method == "HEAD":
        await release(rt, converted)
        return response
    return Pinned(rt, converted, response)


def _conversion_params(request: Request) -> tuple[str, int]:
    q = request.query_params
    fmt = q.get("format", "mp3")
    if fmt not in FORMATS:
        raise InvalidRequest(
            f"Invalid format: {_shown(fmt)}. Expected one of {', '.join(FORMATS)}.",
            param="format",
        )
    raw_rate = q.get("sample_rate", "8000")
    if raw_rate not in _RATES:
        raise InvalidRequest(
            f"Invalid sample_rate: {_shown(raw_rate)}. Expected one of {', '.join(_RATES)}.",
            param="sample_rate",
        )
    return fmt, _RATES[raw_rate]


def _shown(value: str) -> str:
    """A rejected value as the message quotes it: a 5,000-digit one is not echoed whole."""
    return repr(value if len(value) <= 24 else value[:24] + "…")


async def _converted(rt: Runtime, rec: Recording, fmt: str, sample_rate: int) -> Kept | Unkept:
    try:
        return await find_or_convert(rt, rec, fmt, sample_rate)
    except StorageError:
        raise storage_unavailable() from None


def _headers(converted: Kept | Unkept) -> dict[str, str]:
    return {
        "content-type": converted.content_type,
        "content-disposition": f'attachment; filename="{converted.filename}"',
        "cache-control": "private",
    }


def _streamed_response(request: Request, rt: Runtime, unkept: Unkept) -> ASGIApp:
    """Made while sent: no ranges (a Range header is ignored, as RFC 9110 allows)."""
    headers = {**_headers(unkept), "accept-ranges": "none"}
    if unkept.size is not None:
        headers["content-length"] = str(unkept.size)
    if request.method == "HEAD":
        return HeadersOnly(200, encode_headers(headers))
    return Converting(rt, unkept, encode_headers(headers), rt.metrics.count_bytes)


def _file_response(request: Request, rt: Runtime, converted: Kept) -> ASGIApp:
    size, key = converted.size, converted.key
    headers = {**_headers(converted), "accept-ranges": "bytes"}
    if request.method == "HEAD":
        return HeadersOnly(200, encode_headers({**headers, "content-length": str(size)}))
    try:
        ranges = parse_range(request.headers.get("range"), size)
    except UnsatisfiableRange:
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
