"""GET and HEAD /v1/recordings/{id}/audio: route → auth → repository → storage → response.

The hottest route of the service: what never changes for a ready recording (its validators and
headers) is computed once per recording (representation.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NoReturn

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

from kallrec.api import offload
from kallrec.api.common import authorize_caller, request_headers
from kallrec.api.context import request_context
from kallrec.api.representation import MP3, audio_representation, encode_headers
from kallrec.api.stored_body import SEEK_LIMIT, HeadersOnly, ReadBody, StoredBody
from kallrec.db.models import Recording
from kallrec.errors import (
    PreconditionFailed,
    RangeNotSatisfiable,
    storage_unavailable,
)
from kallrec.http.conditional import (
    Outcome,
    evaluate_preconditions,
    if_range_allows_partial,
)
from kallrec.http.multipart import new_boundary, plan_multipart
from kallrec.http.ranges import UnsatisfiableRange, parse_range
from kallrec.runtime import Runtime
from kallrec.servable import servable
from kallrec.storage import Presigning, StorageError

MP3_RAW = MP3.encode()


class RecordingAudio:
    """The endpoint, a plain ASGI app: the app matches it before the route table (app.py), and
    it decodes the request's headers once instead of wrapping the request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt: Runtime = scope["app"].runtime
        headers = request_headers(scope)
        principal = await authorize_caller(rt, headers, request_context(scope), "recordings:read")
        recording_id = scope["path_params"]["recording_id"]
        rec = servable(
            await rt.get_recording(principal.org_id, principal.livemode, recording_id),
            recording_id,
        )
        response = await audio_response(rt, scope["method"], headers, rec)
        await response(scope, receive, send)


recording_audio = RecordingAudio()


async def audio_response(rt: Runtime, method: str, h: Mapping[str, str], rec: Recording) -> ASGIApp:
    assert rec.storage_key is not None and rec.size is not None and rec.ready_at is not None
    rep = audio_representation(rec)
    size, key = rec.size, rec.storage_key
    outcome = evaluate_preconditions(
        method=method,
        etag=rep.etag,
        last_modified=rec.ready_at,
        if_match=h.get("if-match"),
        if_none_match=h.get("if-none-match"),
        if_modified_since=h.get("if-modified-since"),
        if_unmodified_since=h.get("if-unmodified-since"),
    )
    if outcome is Outcome.PRECONDITION_FAILED:
        raise PreconditionFailed("The recording does not match the If-Match/If-Unmodified-Since.")
    if outcome is Outcome.NOT_MODIFIED:
        return HeadersOnly(304, rep.raw)
    redirect = rt.settings.s3_redirect != "off" and method == "GET"
    if redirect and isinstance(rt.storage, Presigning):
        return _redirect_to_storage(rt, rt.storage, rec)

    if method == "HEAD":  # Range is defined for GET only (RFC 9110 §14.2)
        await _check_stored(rt, rec)
        return HeadersOnly(200, rep.raw_full)

    ranges = None
    range_header = h.get("range")
    if range_header and if_range_allows_partial(
        h.get("if-range"), etag=rep.etag, last_modified=rec.ready_at
    ):
        try:
            ranges = parse_range(range_header, size)
        except UnsatisfiableRange:
            raise RangeNotSatisfiable(
                f"The requested range is outside the recording's {size} bytes.",
                param="Range",
                headers={"content-range": f"bytes */{size}"},
            ) from None

    count = rt.metrics.count_bytes
    if rt.settings.offload == "nginx":
        await _check_stored(rt, rec)
        accel = offload.nginx_redirect(
            prefix=rt.settings.offload_prefix,
            key=key,
            size=size,
            headers=rep.headers,
            request_headers=h,
            ranges=ranges,
            count_bytes=count,
        )
        if accel is not None:
            return accel
    elif ranges is not None and len(ranges) == 1 and ranges[0][1] - ranges[0][0] <= SEEK_LIMIT:
        # A seek: read it before answering (the read itself proves the bytes are there), and
        # send it in one message.
        start, end = ranges[0]
        body = await _read_stored(rt, rec, start, end)
        count(len(body))
        return ReadBody(206, _partial_headers(rep.raw, start, end, size), body)
    else:
        await _check_stored(rt, rec)

    if ranges is None:
        return StoredBody(
            status=200,
            headers=rep.raw_full,
            storage=rt.storage,
            key=key,
            segments=[(b"", 0, size)],
            whole_file=rt.storage.local_path(key),
            count_bytes=count,
        )
    if len(ranges) == 1:
        start, end = ranges[0]
        return StoredBody(
            status=206,
            headers=_partial_headers(rep.raw, start, end, size),
            storage=rt.storage,
            key=key,
            segments=[(b"", start, end)],
            # `bytes=0-`, a browser player's first request, is the whole file: zero-copy too.
            whole_file=rt.storage.local_path(key) if (start, end) == (0, size) else None,
            count_bytes=count,
        )
    plan = plan_multipart(ranges, size, MP3, new_boundary())
    return StoredBody(
        status=206,
        headers=[
            *rep.raw,
            (b"content-type", plan.content_type.encode()),
            (b"content-length", str(plan.content_length).encode()),
        ],
        storage=rt.storage,
        key=key,
        segments=plan.parts,
        trailer=plan.trailer,
        count_bytes=count,
    )


def _partial_headers(
    raw: Sequence[tuple[bytes, bytes]], start: int, end: int, size: int
) -> list[tuple[bytes, bytes]]:
    return [
        *raw,
        (b"content-type", MP3_RAW),
        (b"content-length", b"%d" % (end - start)),
        (b"content-range", b"bytes %d-%d/%d" % (start, end - 1, size)),
    ]


def _redirect_to_storage(rt: Runtime, storage: Presigning, rec: Recording) -> HeadersOnly:
    """KALLREC_S3_REDIRECT: S3 sends the bytes (ranges included) from a short-lived presigned URL
    that forces the filename and type. Conditionals were answered above; HEAD is answered here,
    since a URL presigned for GET does not allow HEAD. No HEAD to S3 first: the point of this
    mode is that a download costs kallrec no storage round trip."""
    assert rec.storage_key is not None
    url = storage.presign_get(
        rec.storage_key,
        filename=f"recording-{rec.session_id}.mp3",
        content_type=MP3,
        expires=rt.settings.s3_redirect_ttl_seconds,
    )
    headers = {"location": url, "cache-control": "private, no-store", "content-length": "0"}
    return HeadersOnly(int(rt.settings.s3_redirect), encode_headers(headers))


async def _check_stored(rt: Runtime, rec: Recording) -> None:
    """Never serve a broken file: the stored object must be there and whole."""
    assert rec.storage_key is not None
    try:
        info = await rt.storage.stat(rec.storage_key)
    except StorageError:
        info = None
    if info is None or info.size != rec.size:
        await _not_stored(rt, rec)


async def _read_stored(rt: Runtime, rec: Recording, start: int, end: int) -> bytes:
    assert rec.storage_key is not None
    try:
        return await rt.storage.read_range(rec.storage_key, start, end)
    except StorageError:
        await _not_stored(rt, rec)


async def _not_stored(rt: Runtime, rec: Recording) -> NoReturn:
    """Raises the answer for a recording whose stored audio is missing or damaged."""
    # A cached row can be a moment behind a delete or purge made on another host: ask the
    # database before calling it an outage, so the client gets the 404 or 410 it should.
    fresh = await anyio.to_thread.run_sync(rt.repo.get_recording, rec.org_id, rec.livemode, rec.id)
    servable(fresh, rec.id)
    raise storage_unavailable()
