"""GET /v1/recordings/{id}/peaks: the waveform a player draws before it loads the audio.

The body is the compact JSON kallrec.peaks makes (stored when the recording was processed, or
computed on this first request for older recordings). A ready recording's peaks never change, so
they carry an ETag derived from the audio's and answer ``If-None-Match`` with a 304.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from kallrec.api.common import authorize, runtime
from kallrec.db.models import Recording
from kallrec.errors import PreconditionFailed, storage_unavailable
from kallrec.http.conditional import Outcome, evaluate_preconditions
from kallrec.peaks import recording_peaks
from kallrec.runtime import Runtime
from kallrec.servable import servable
from kallrec.storage import StorageError


async def get_peaks(request: Request) -> Response:
    principal = await authorize(request, "recordings:read")
    rt = runtime(request)
    recording_id = request.path_params["recording_id"]
    rec = servable(
        await rt.get_recording(principal.org_id, principal.livemode, recording_id), recording_id
    )
    return await peaks_response(request, rt, rec)


async def peaks_response(request: Request, rt: Runtime, rec: Recording) -> Response:
    assert rec.ready_at is not None
    etag = f'"peaks-{rec.content_hash}"'
    headers = {"etag": etag, "cache-control": "private, max-age=3600"}
    h = request.headers
    outcome = evaluate_preconditions(
        method=request.method,
        etag=etag,
        last_modified=rec.ready_at,
        if_match=h.get("if-match"),
        if_none_match=h.get("if-none-match"),
        if_modified_since=h.get("if-modified-since"),
        if_unmodified_since=h.get("if-unmodified-since"),
    )
    if outcome is Outcome.PRECONDITION_FAILED:
        raise PreconditionFailed("The peaks do not match the If-Match/If-Unmodified-Since.")
    if outcome is Outcome.NOT_MODIFIED:
        return Response(status_code=304, headers=headers)
    try:
        body = await recording_peaks(rt, rec)
    except StorageError:
        raise storage_unavailable() from None
    return Response(body, media_type="application/json", headers=headers)
