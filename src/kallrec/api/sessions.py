"""Sessions: create, retrieve, end (spec §3.2, §4). The live stream itself is separate."""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from kallrec import ids, timeutil, validation
from kallrec.api.common import (
    authorize,
    json_body,
    json_response,
    one_of,
    read_body,
    runtime,
)
from kallrec.api.idempotency import idempotent
from kallrec.api.objects import session_object
from kallrec.auth import Principal
from kallrec.db.models import Session
from kallrec.db.repository import metadata_json
from kallrec.download_links import signing_secret
from kallrec.errors import InvalidRequest, missing
from kallrec.events import session_event
from kallrec.live import stream_tokens
from kallrec.recordings import end_session
from kallrec.runtime import Runtime

SESSION_MODES = (
    "bidirectional_translation",
    "assistive_translation",
    "ai_agent",
    "help_chat_voice",
)
PROVIDERS = ("twilio", "telnyx", "sip")
CHANNELS = ("mixed", "dual")
FIELDS = {"mode", "source_language", "target_language", "provider", "recording", "metadata"}


def stream_base(request: Request) -> str:
    public = runtime(request).settings.public_url
    base = public.rstrip("/") if public else f"{request.url.scheme}://{request.url.netloc}"
    return "ws" + base.removeprefix("http")


async def new_stream_token(rt: Runtime, session_id: str, livemode: bool) -> str:
    """Only ever called on behalf of a key with sessions:write (live/stream_tokens.py)."""
    secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
    return stream_tokens.mint(session_id, livemode, secret)


def _visible(session: Session, principal: Principal, stream_url: str) -> dict[str, Any]:
    """The session as this key may see it: the stream token opens the session for writing, so
    a key without sessions:write gets ``stream: null`` (spec §9)."""
    body = session_object(session, stream_url)
    if "sessions:write" not in principal.scopes:
        body["stream"] = None
    return body


def _parse_session(body: dict[str, Any]) -> dict[str, Any]:
    validation.reject_unknown(body, FIELDS)
    if "mode" not in body:
        raise InvalidRequest("Missing required parameter: mode.", param="mode")
    recording = body.get("recording")
    if recording is None:
        recording = {}
    if not isinstance(recording, dict):
        raise InvalidRequest("Invalid recording: expected an object.", param="recording")
    validation.reject_unknown(recording, {"enabled", "channels"}, prefix="recording.")
    enabled = recording.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidRequest(
            "Invalid recording.enabled: expected a boolean.", param="recording.enabled"
        )
    provider = body.get("provider")
    return {
        "mode": one_of(body["mode"], SESSION_MODES, "mode"),
        "source_language": validation.optional_string(body, "source_language", 35),
        "target_language": validation.optional_string(body, "target_language", 35),
        "provider": None if provider is None else one_of(provider, PROVIDERS, "provider"),
        "recording_enabled": enabled,
        "recording_channels": one_of(
            recording.get("channels", "mixed"), CHANNELS, "recording.channels"
        ),
        "metadata": validation.metadata(body.get("metadata")),
    }


async def create_session(request: Request) -> Response:
    principal = await authorize(request, "sessions:write")
    raw = await read_body(request)

    async def create() -> Response:
        fields = _parse_session(await json_body(request))
        rt = runtime(request)
        now = timeutil.now()
        meta = fields.pop("metadata")
        session_id = ids.new_id("sess")
        session = Session(
            id=session_id,
            org_id=principal.org_id,
            livemode=principal.livemode,
            status="created",
            metadata=metadata_json(meta),
            stream_token=await new_stream_token(rt, session_id, principal.livemode),
            stream_token_expires_at=now + rt.settings.session_token_ttl_seconds,
            created_at=now,
            started_at=None,
            ended_at=None,
            **fields,
        )
        await anyio.to_thread.run_sync(
            rt.repo.insert_session, session, session_event("session.created")
        )
        return json_response(session_object(session, stream_base(request)), 201)

    return await idempotent(request, principal, raw, create)


async def get_session(request: Request) -> Response:
    principal = await authorize(request, "sessions:read")
    session_id = request.path_params["session_id"]
    rt = runtime(request)
    session = await anyio.to_thread.run_sync(
        rt.repo.get_session, principal.org_id, principal.livemode, session_id
    )
    if session is None:
        raise missing("session", session_id, "session_id")
    if (
        "sessions:write" in principal.scopes
        and session.status != "ended"
        and (
            (session.stream_token_expires_at or 0) <= timeutil.now()
            or not stream_tokens.current_shape(session.stream_token or "")
        )
    ):
        # Tokens live five minutes; a bridge that must reconnect later fetches a fresh one here.
        # One minted before tokens went to write keys only opens no stream: replaced at once.
        session = await anyio.to_thread.run_sync(
            rt.repo.replace_stream_token,
            session.id,
            await new_stream_token(rt, session.id, session.livemode),
            timeutil.now() + rt.settings.session_token_ttl_seconds,
        )
    return json_response(_visible(session, principal, stream_base(request)))


async def end_session_route(request: Request) -> Response:
    principal = await authorize(request, "sessions:write")
    session_id = request.path_params["session_id"]
    session = await end_session(runtime(request), principal.org_id, principal.livemode, session_id)
    if session is None:
        raise missing("session", session_id, "session_id")
    return json_response(session_object(session, stream_base(request)))
