"""Sessions: create, retrieve, list, end (spec §3.2, §4). The live stream itself is separate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from kallrec import ids, routing, timeutil, validation
from kallrec.api.common import (
    authorize,
    created_bound,
    fetch_page,
    json_body,
    json_response,
    list_object,
    optional_choice,
    page_params,
    read_body,
    runtime,
)
from kallrec.api.idempotency import idempotent
from kallrec.api.public_url import public_base
from kallrec.db.models import Session
from kallrec.db.repository import SessionFilter, metadata_json
from kallrec.download_links import signing_secret
from kallrec.errors import InvalidRequest, ValidationError, missing
from kallrec.events import session_event
from kallrec.lifecycle import END_REASONS, end_session
from kallrec.live import stream_tokens
from kallrec.principal import Principal
from kallrec.runtime import Runtime
from kallrec.wire import session_object

SESSION_MODES = (
    "bidirectional_translation",
    "assistive_translation",
    "ai_agent",
    "help_chat_voice",
)
# What a session's `provider` may say: the carrier of its routing (kallrec.routing).
PROVIDERS = routing.CARRIERS
CHANNELS = ("mixed", "dual")
STATUSES = ("created", "active", "ended")
FIELDS = {
    "mode",
    "source_language",
    "target_language",
    "routing",
    "provider",  # the older docs' routing object; a string is refused (kallrec.routing)
    "recording",
    "metadata",
    "ai_agent",
}
END_FIELDS = {"reason"}
SEARCH_MAX_CHARS = 100


def stream_base(request: Request) -> str:
    """``ws(s)://host[:port]`` of the stream URLs: the public address, else the one the client
    called, else (a Host header that is no host) the address kallrec listens on."""
    settings = runtime(request).settings
    base = public_base(request, settings.public_url) or settings.base_url
    return "ws" + base.removeprefix("http")


async def new_stream_token(rt: Runtime, session_id: str, livemode: bool) -> str:
    """Only ever called on behalf of a key with sessions:write (live/stream_tokens.py)."""
    secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
    return stream_tokens.mint(session_id, livemode, secret)


async def _visible(
    request: Request, principal: Principal, sessions: Sequence[Session]
) -> list[dict[str, Any]]:
    """The sessions as this key may see them, each with its mixed recording's duration: the
    stream token opens the session for writing, so a key without sessions:write gets
    ``stream: null`` (spec §9)."""
    rt = runtime(request)
    mixed = await anyio.to_thread.run_sync(
        rt.repo.recordings_by_id, [s.recording_id for s in sessions if s.recording_id]
    )
    url = stream_base(request)
    bodies = []
    for session in sessions:
        body = session_object(
            session, url, mixed.get(session.recording_id or ""), rt.settings.sip_domain
        )
        if "sessions:write" not in principal.scopes:
            body["stream"] = None
        bodies.append(body)
    return bodies


def _recording(body: dict[str, Any], record_by_default: bool) -> tuple[bool, str]:
    recording = body.get("recording")
    if recording is None:
        recording = {}
    if not isinstance(recording, dict):
        raise ValidationError("Invalid recording: expected an object.", param="recording")
    validation.reject_unknown(recording, {"enabled", "channels"}, prefix="recording.")
    enabled = recording.get("enabled")
    if enabled is None:
        # Kallglot does not record unless asked; an organization may record by default.
        enabled = record_by_default
    if not isinstance(enabled, bool):
        raise ValidationError(
            "Invalid recording.enabled: expected a boolean.", param="recording.enabled"
        )
    channels = recording.get("channels")
    channels = "mixed" if channels is None else channels
    return enabled, validation.choice(channels, CHANNELS, "recording.channels")


def _parse_session(body: dict[str, Any], record_by_default: bool) -> dict[str, Any]:
    mode = validation.required(body, "mode")
    validation.choice(mode, SESSION_MODES, "mode", code="invalid_mode")
    validation.reject_unknown(body, FIELDS)
    source = validation.language(body, "source_language")
    target = validation.language(body, "target_language")
    route = routing.from_body(body)
    enabled, channels = _recording(body, record_by_default)
    meta = validation.metadata(body.get("metadata"))
    agent = body.get("ai_agent")
    if agent is not None:
        validation.free_object(agent, "ai_agent")
    return {
        "mode": mode,
        "source_language": source,
        "target_language": target,
        "provider": route.type if route else None,
        "phone_number": route.phone_number if route else None,
        "direction": route.direction if route else None,
        "routing": route.stored_json() if route else None,
        "carrier_ids": route.carrier_ids_json() if route else None,
        "recording_enabled": enabled,
        "recording_channels": channels,
        "metadata": metadata_json(meta),
        "ai_agent": None if agent is None else json.dumps(agent, separators=(",", ":")),
    }


async def create_session(request: Request) -> Response:
    principal = await authorize(request, "sessions:write")
    raw = await read_body(request)

    async def create() -> Response:
        body = await json_body(request)
        rt = runtime(request)
        org = await anyio.to_thread.run_sync(rt.repo.get_org, principal.org_id)
        fields = _parse_session(body, org is not None and org.record_by_default)
        now = timeutil.now()
        session_id = ids.new_id("sess")
        session = Session(
            id=session_id,
            org_id=principal.org_id,
            livemode=principal.livemode,
            status="created",
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
        body = session_object(session, stream_base(request), sip_domain=rt.settings.sip_domain)
        return json_response(body, 201)

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
    return json_response((await _visible(request, principal, [session]))[0])


async def list_sessions(request: Request) -> Response:
    """(extension; Kallglot's older docs list it) The organization's sessions, newest first.
    Stream tokens are shown as stored (they may have expired): GET the session for a fresh one."""
    principal = await authorize(request, "sessions:read")
    page = page_params(request)
    flt = SessionFilter(
        status=optional_choice(request, "status", STATUSES),
        created_gte=created_bound(request, "created[gte]"),
        created_lt=created_bound(request, "created[lt]"),
        text=search_text(request),
        carrier_id=_carrier_id(request),
    )
    repo = runtime(request).repo
    rows, has_more = await fetch_page(
        lambda: repo.list_sessions(principal.org_id, principal.livemode, flt, page)
    )
    data = await _visible(request, principal, rows)
    return json_response(list_object(data, has_more, "/v1/sessions"))


def search_text(request: Request) -> str | None:
    """``q``: text the sessions' metadata, carrier ids or phone number contain (the console's
    search), at most SEARCH_MAX_CHARS."""
    text = request.query_params.get("q", "").strip()
    if len(text) > SEARCH_MAX_CHARS:
        raise InvalidRequest(
            f"Invalid q: at most {SEARCH_MAX_CHARS} characters are searched.", param="q"
        )
    return text or None


def _carrier_id(request: Request) -> str | None:
    """``?carrier_id=``: a carrier's call or stream id (Twilio's CallSid, Telnyx's
    call_control_id, Plivo's callId, Vonage's uuid, a streamSid...) kept on the session."""
    value = request.query_params.get("carrier_id")
    if value is None:
        return None
    if not value or len(value) > routing.MAX_ID_CHARS:
        raise ValidationError(
            f"Invalid carrier_id: expected 1 to {routing.MAX_ID_CHARS} characters.",
            param="carrier_id",
        )
    return value


def _end_reason(body: dict[str, Any]) -> str:
    validation.reject_unknown(body, END_FIELDS)
    reason = body.get("reason")
    return "completed" if reason is None else validation.choice(reason, END_REASONS, "reason")


async def end_session_route(request: Request) -> Response:
    """Ends the session (idempotent, also under Idempotency-Key); the body is optional
    (``{"reason": …}``, Kallglot's older docs). Its recordings exist when this answers."""
    principal = await authorize(request, "sessions:write")
    session_id = request.path_params["session_id"]
    raw = await read_body(request)

    async def end() -> Response:
        reason = _end_reason(await json_body(request))
        rt = runtime(request)
        session = await end_session(rt, principal.org_id, principal.livemode, session_id, reason)
        if session is None:
            raise missing("session", session_id, "session_id")
        return json_response((await _visible(request, principal, [session]))[0])

    return await idempotent(request, principal, raw, end)
