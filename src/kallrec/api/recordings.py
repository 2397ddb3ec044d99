"""Recording metadata, lists, deletion and imports (spec §3.1, §4)."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kallrec import validation
from kallrec.api.common import (
    authorize,
    authorize_caller,
    created_bound,
    fetch_page,
    json_bytes,
    json_response,
    list_object,
    optional_choice,
    page_params,
    request_headers,
    runtime,
    send_json,
)
from kallrec.api.context import request_context
from kallrec.api.idempotency import idempotent
from kallrec.db.models import Recording
from kallrec.db.repository import RecordingFilter
from kallrec.errors import (
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMedia,
    ValidationError,
    missing,
)
from kallrec.importing import IMPORT_CHANNELS, ImportRequest, import_audio
from kallrec.lifecycle import delete_recording
from kallrec.principal import Principal
from kallrec.runtime import Runtime
from kallrec.tempfiles import spool
from kallrec.wire import recording_object

CHANNELS = ("mixed", "agent", "customer")
STATUSES = ("processing", "ready", "failed", "expired")
# Room for the multipart envelope and the small fields around the file.
MULTIPART_OVERHEAD = 64 * 1024


class RecordingMetadata:
    """GET /v1/recordings/{id}, asked before nearly every download: like the audio endpoint, a
    plain ASGI app matched before the route table, its JSON made once per row."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rt: Runtime = scope["app"].runtime
        context = request_context(scope)
        principal = await authorize_caller(rt, request_headers(scope), context, "recordings:read")
        recording_id = scope["path_params"]["recording_id"]
        rec = await rt.get_recording(principal.org_id, principal.livemode, recording_id)
        if rec is None:
            raise missing("recording", recording_id, "recording_id")
        await send_json(scope, send, recording_json(rec))


get_recording = RecordingMetadata()


@functools.lru_cache(maxsize=8192)
def recording_json(rec: Recording) -> bytes:
    """Keyed by the whole (frozen) row: a changed row is a different key, never a stale body."""
    return json_bytes(recording_object(rec))


async def _list(request: Request, principal: Principal, flt: RecordingFilter, url: str) -> Response:
    page = page_params(request)
    repo = runtime(request).repo
    rows, has_more = await fetch_page(
        lambda: repo.list_recordings(principal.org_id, principal.livemode, flt, page)
    )
    return json_response(list_object([recording_object(r) for r in rows], has_more, url))


async def list_recordings(request: Request) -> Response:
    principal = await authorize(request, "recordings:read")
    flt = RecordingFilter(
        session_id=request.query_params.get("session_id") or None,
        channel=optional_choice(request, "channel", CHANNELS),
        status=optional_choice(request, "status", STATUSES),
        created_gte=created_bound(request, "created[gte]"),
        created_lt=created_bound(request, "created[lt]"),
    )
    return await _list(request, principal, flt, "/v1/recordings")


async def list_session_recordings(request: Request) -> Response:
    principal = await authorize(request, "recordings:read")
    session_id = request.path_params["session_id"]
    rt = runtime(request)
    session = await anyio.to_thread.run_sync(
        rt.repo.get_session, principal.org_id, principal.livemode, session_id
    )
    if session is None:
        raise missing("session", session_id, "session_id")
    flt = RecordingFilter(
        session_id=session_id, channel=optional_choice(request, "channel", CHANNELS)
    )
    return await _list(request, principal, flt, f"/v1/sessions/{session_id}/recordings")


async def delete_recording_route(request: Request) -> Response:
    principal = await authorize(request, "recordings:delete")
    recording_id = request.path_params["recording_id"]
    rec = await delete_recording(
        runtime(request), principal.org_id, principal.livemode, recording_id
    )
    if rec is None:
        raise missing("recording", recording_id, "recording_id")
    return json_response({"id": rec.id, "object": "recording", "deleted": True})


class _Upload:
    """The parsed multipart form: the file spooled to a named temp file, and the fields."""

    def __init__(self, path: Path, hint: str | None, fields: dict[str, str], digest: str) -> None:
        self.path = path
        self.hint = hint
        self.fields = fields
        self.digest = digest


async def _receive_upload(request: Request, tmp_dir: Path, limit: int) -> _Upload:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMedia(
            "Send the recording as multipart/form-data with the audio in a 'file' field.",
            code="unsupported_media_type",
        )
    too_large = PayloadTooLarge(
        f"The file is larger than the {limit:,}-byte import limit.", param="file"
    )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise too_large

    async def counted() -> Any:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + MULTIPART_OVERHEAD:
                raise too_large
            yield chunk

    parser = MultiPartParser(request.headers, counted(), max_files=1, max_fields=100)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"The multipart body is malformed: {exc.message}") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationError(
                "Missing required parameter: file.", code="missing_required_field", param="file"
            )
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        # The idempotency fingerprint covers what was sent (file bytes and fields), not the
        # multipart framing: clients pick a new random boundary on every retry.
        digest = hashlib.sha256(json.dumps(sorted(fields.items())).encode())
        path, size = await anyio.to_thread.run_sync(spool, upload.file, tmp_dir, digest, ".upload")
        if size > limit:
            await anyio.Path(path).unlink()
            raise too_large
        hint = " ".join(filter(None, (upload.filename, upload.content_type))) or None
        return _Upload(path, hint, fields, digest.hexdigest())
    finally:
        await form.close()


def _import_fields(
    fields: dict[str, str],
) -> tuple[str, str | None, dict[str, str | int | float | bool] | None]:
    metadata: dict[str, str] = {}
    for name, value in fields.items():
        if name.startswith("metadata[") and name.endswith("]"):
            metadata[name[9:-1]] = value
        elif name not in ("session_id", "channel"):
            raise ValidationError(
                f"Received unknown parameter: {name}.", code="invalid_request", param=name
            )
    channel = validation.choice(fields.get("channel", "mixed"), IMPORT_CHANNELS, "channel")
    session_id = fields.get("session_id") or None
    if metadata and session_id:
        raise ValidationError(
            "metadata describes the new session an import creates; it cannot be combined "
            "with session_id (that session keeps its own metadata).",
            param="metadata",
        )
    return channel, session_id, validation.metadata(metadata or None)


async def import_recording(request: Request) -> Response:
    principal = await authorize(request, "sessions:write")
    rt = runtime(request)
    upload = await _receive_upload(request, rt.scratch, rt.settings.max_upload_bytes)
    try:

        async def run() -> Response:
            channel, session_id, metadata = _import_fields(upload.fields)
            created = await import_audio(
                rt,
                principal.org_id,
                principal.livemode,
                ImportRequest(upload.path, upload.hint, channel, session_id, metadata),
            )
            body = recording_object(created[0])
            if len(created) > 1:
                # A dual import makes three recordings; the first (mixed) is the answer, the
                # others are listed alongside so a client need not search for them.
                body["related_recordings"] = [recording_object(r) for r in created[1:]]
            return json_response(body, 202)

        return await idempotent(request, principal, upload.digest, run)
    finally:
        await anyio.Path(upload.path).unlink(missing_ok=True)
