"""GET and HEAD /v1/recordings/{id}/audio: route → auth → repository → storage → response."""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp

from kallrec import timeutil
from kallrec.api import offload
from kallrec.api.audio_body import HeadersOnly, StoredBody
from kallrec.api.common import authorize, runtime
from kallrec.db.models import Recording
from kallrec.errors import (
    Conflict,
    Gone,
    PreconditionFailed,
    RangeNotSatisfiable,
    StorageUnavailable,
    missing,
)
from kallrec.http.conditional import (
    Outcome,
    evaluate_preconditions,
    http_date,
    if_range_allows_partial,
)
from kallrec.http.multipart import new_boundary, plan_multipart
from kallrec.http.ranges import RangeNotSatisfiable as Unsatisfiable
from kallrec.http.ranges import parse_range
from kallrec.runtime import Runtime
from kallrec.storage import Presigning, StorageError

MP3 = "audio/mpeg"
PROCESSING_RETRY_AFTER = 2


def servable(rec: Recording | None, recording_id: str) -> Recording:
    """The recording if its audio can be sent now, else the error spec §1.2 prescribes."""
    if rec is None:
        raise missing("recording", recording_id, "recording_id")
    if rec.status == "processing":
        raise Conflict(
            f"Recording '{rec.id}' is still processing; try again shortly.",
            code="recording_not_ready",
            param="recording_id",
            retry_after=PROCESSING_RETRY_AFTER,
        )
    if rec.status == "failed":
        raise Conflict(
            f"Recording '{rec.id}' failed to process and has no audio.",
            code="recording_failed",
            param="recording_id",
        )
    if rec.status == "expired" or rec.expires_at <= timeutil.now():
        raise Gone(
            f"Recording '{rec.id}' passed its retention period and its audio was purged.",
            code="recording_expired",
            param="recording_id",
        )
    assert rec.storage_key is not None and rec.size is not None and rec.content_hash
    return rec


def representation_headers(rec: Recording) -> dict[str, str]:
    """The validators and metadata every answer about this audio carries (200, 206, 304)."""
    assert rec.ready_at is not None
    return {
        "accept-ranges": "bytes",
        "etag": f'"{rec.content_hash}"',
        "last-modified": http_date(rec.ready_at),
        "cache-control": "private",
        "content-disposition": f'attachment; filename="recording-{rec.session_id}.mp3"',
    }


async def recording_audio(request: Request) -> ASGIApp:
    principal = await authorize(request, "recordings:read")
    rt = runtime(request)
    recording_id = request.path_params["recording_id"]
    rec = servable(
        await rt.get_recording(principal.org_id, principal.livemode, recording_id), recording_id
    )
    return await audio_response(request, rt, rec)


async def audio_response(request: Request, rt: Runtime, rec: Recording) -> ASGIApp:
    assert rec.storage_key is not None and rec.size is not None and rec.ready_at is not None
    size, key = rec.size, rec.storage_key
    headers = representation_headers(rec)
    h = request.headers
    outcome = evaluate_preconditions(
        method=request.method,
        etag=headers["etag"],
        last_modified=rec.ready_at,
        if_match=h.get("if-match"),
        if_none_match=h.get("if-none-match"),
        if_modified_since=h.get("if-modified-since"),
        if_unmodified_since=h.get("if-unmodified-since"),
    )
    if outcome is Outcome.PRECONDITION_FAILED:
        raise PreconditionFailed("The recording does not match the If-Match/If-Unmodified-Since.")
    if outcome is Outcome.NOT_MODIFIED:
        return HeadersOnly(304, headers)
    redirect = rt.settings.s3_redirect != "off" and request.method == "GET"
    if redirect and isinstance(rt.storage, Presigning):
        return _redirect_to_storage(rt, rt.storage, rec)

    await _check_stored(rt, rec)
    if request.method == "HEAD":  # Range is defined for GET only (RFC 9110 §14.2)
        return HeadersOnly(200, {**headers, "content-type": MP3, "content-length": str(size)})

    ranges = None
    range_header = h.get("range")
    if range_header and if_range_allows_partial(
        h.get("if-range"), etag=headers["etag"], last_modified=rec.ready_at
    ):
        try:
            ranges = parse_range(range_header, size)
        except Unsatisfiable:
            raise RangeNotSatisfiable(
                f"The requested range is outside the recording's {size} bytes.",
                param="Range",
                headers={"content-range": f"bytes */{size}"},
            ) from None

    count = rt.metrics.bytes_served.inc
    if rt.settings.offload == "nginx":
        accel = offload.nginx_redirect(
            prefix=rt.settings.offload_prefix,
            key=key,
            size=size,
            headers=headers,
            request_headers=h,
            ranges=ranges,
            count_bytes=count,
        )
        if accel is not None:
            return accel
    if ranges is None:
        return StoredBody(
            status=200,
            headers={**headers, "content-type": MP3, "content-length": str(size)},
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
            headers={
                **headers,
                "content-type": MP3,
                "content-length": str(end - start),
                "content-range": f"bytes {start}-{end - 1}/{size}",
            },
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
        headers={
            **headers,
            "content-type": plan.content_type,
            "content-length": str(plan.content_length),
        },
        storage=rt.storage,
        key=key,
        segments=plan.parts,
        trailer=plan.trailer,
        count_bytes=count,
    )


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
    return HeadersOnly(int(rt.settings.s3_redirect), headers)


async def _check_stored(rt: Runtime, rec: Recording) -> None:
    """Never serve a broken file: the stored object must be there and whole."""
    assert rec.storage_key is not None
    try:
        info = await rt.storage.stat(rec.storage_key)
    except StorageError:
        info = None
    if info is not None and info.size == rec.size:
        return
    # A cached row can be a moment behind a delete or purge made on another host: ask the
    # database before calling it an outage, so the client gets the 404 or 410 it should.
    fresh = await anyio.to_thread.run_sync(rt.repo.get_recording, rec.org_id, rec.livemode, rec.id)
    servable(fresh, rec.id)
    raise StorageUnavailable(
        "The recording's audio cannot be read from storage right now.", retry_after=5
    )
