"""Playback links (issue 16, spec §10): URLs a browser plays without a key.

``POST /v1/recordings/{id}/links`` (``recordings:read``) makes one for a ready recording:
``{"expires_in": seconds (1 … 7 days, default 1 hour), "disposition": "inline" | "attachment"}``
→ ``201`` with its ``url`` (``/v1/playback/{link_id}/audio?expires=…&signature=…``) and
``peaks_url`` (the same signature grants ``/v1/playback/{link_id}/peaks``).
``DELETE /v1/recordings/{id}/links/{link_id}`` revokes it; revoking the key that made it revokes
it too (db/playback_repository.py).

The link URL is the ``/audio`` endpoint with another authorization: the response is made by the
same ``audio_response`` (Range, multipart, HEAD, ETag, 304, If-Range, the storage modes). Only
``Content-Disposition`` says what the link asked for, and ``Cache-Control: private, no-cache``
makes browsers revalidate, so a revoked link stops playing from their cache too. The URL is
matched by the app's ``hot_route`` like ``/audio``, and the link row is cached like keys and
recordings (runtime.LinkGrants), so a seek costs what it costs on ``/audio``. Its answers, errors
included, carry CORS headers for any origin (app.py adds them when a handler sets its
RequestContext's ``cors``): a page on another origin may play it, or fetch its peaks. No other URL
of kallrec answers CORS requests.

Refusals: a URL that was altered, forged or cut short is ``403 invalid_signature``; a genuine one
past its ``expires`` ``403 expired_signature``; a revoked link, or one whose key was revoked,
``403 link_revoked``. The signature is checked before any lookup, so a forged URL learns nothing.
A deleted or purged recording answers as ``/audio`` does (404, 410).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from kallrec import ids, timeutil, validation
from kallrec.api.common import authorize, json_body, json_response, request_headers, runtime
from kallrec.api.context import request_context
from kallrec.api.peaks import peaks_response
from kallrec.api.public_url import public_base
from kallrec.api.recording_audio import audio_response
from kallrec.config import Settings
from kallrec.db.models import PlaybackLink, Recording
from kallrec.download_links import (
    ExpiredLink,
    InvalidLink,
    playback_path,
    signing_secret,
    verify_playback,
)
from kallrec.errors import PermissionDenied, ValidationError, missing
from kallrec.runtime import Runtime
from kallrec.servable import servable

DISPOSITIONS = ("inline", "attachment")
DEFAULT_EXPIRES_IN = 3600
MAX_EXPIRES_IN = 7 * 24 * 3600
FIELDS = {"expires_in", "disposition"}
# What a page on another origin may send and read. Range and the validators are how a player
# seeks and revalidates; it must be able to read Content-Range, the length and the ETag.
CORS_HEADERS = (
    (b"access-control-allow-origin", b"*"),
    (
        b"access-control-expose-headers",
        b"Accept-Ranges, Content-Disposition, Content-Length, Content-Range, ETag, "
        b"Last-Modified, X-Request-Id",
    ),
)
_PREFLIGHT_HEADERS = [
    *CORS_HEADERS,
    (b"access-control-allow-methods", b"GET, HEAD, OPTIONS"),
    (
        b"access-control-allow-headers",
        b"Range, If-Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since",
    ),
    (b"access-control-max-age", b"86400"),
    (b"content-length", b"0"),
]

_secrets: dict[tuple[str | None, str], bytes] = {}


def _secret_key(settings: Settings) -> tuple[str | None, str]:
    return settings.download_signing_secret, str(settings.data_dir)


async def link_secret(rt: Runtime) -> bytes:
    """The signing secret, read (or created) off the event loop once per process."""
    secret = _secrets.get(_secret_key(rt.settings))
    if secret is None:
        secret = await anyio.to_thread.run_sync(signing_secret, rt.settings)
        _secrets[_secret_key(rt.settings)] = secret
    return secret


def link_object(link: PlaybackLink, secret: bytes, base: str) -> dict[str, Any]:
    expires = int(link.expires_at)
    return {
        "id": link.id,
        "object": "playback_link",
        "recording_id": link.recording_id,
        "url": base + playback_path(secret, link.id, expires),
        "peaks_url": base + playback_path(secret, link.id, expires, "peaks"),
        "disposition": link.disposition,
        "created_at": timeutil.iso(link.created_at),
        "expires_at": timeutil.iso(link.expires_at),
        "revoked_at": timeutil.iso(link.revoked_at),
    }


# -- managing links (with a key) --------------------------------------------------------------


async def create_link(request: Request) -> Response:
    principal = await authorize(request, "recordings:read")
    rt = runtime(request)
    recording_id = request.path_params["recording_id"]
    body = await json_body(request)
    validation.reject_unknown(body, FIELDS)
    expires_in = _expires_in(body.get("expires_in", DEFAULT_EXPIRES_IN))
    disposition = validation.choice(body.get("disposition", "inline"), DISPOSITIONS, "disposition")
    rec = servable(
        await rt.get_recording(principal.org_id, principal.livemode, recording_id), recording_id
    )
    now = timeutil.now()
    link = PlaybackLink(
        id=ids.new_id("lnk"),
        org_id=principal.org_id,
        livemode=principal.livemode,
        recording_id=rec.id,
        key_id=principal.key_id,
        disposition=disposition,
        created_at=now,
        # Whole seconds: the URL carries the expiry as an integer, and so does its signature.
        expires_at=float(int(now) + expires_in),
        revoked_at=None,
    )
    await anyio.to_thread.run_sync(rt.playback.create_link, link)
    base = public_base(request, rt.settings.public_url) or ""  # relative without a Host
    response = json_response(link_object(link, await link_secret(rt), base), 201)
    response.headers["cache-control"] = "private, no-store"
    return response


def _expires_in(value: Any) -> int:
    # bool is an int to Python, not to JSON; a float of whole seconds (3600.0) is accepted.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPIRES_IN:
        raise ValidationError(
            f"Invalid expires_in: {str(value)[:24]!r}. It must be a whole number of seconds "
            f"between 1 and {MAX_EXPIRES_IN} (7 days).",
            param="expires_in",
        )
    return value


async def revoke_link(request: Request) -> Response:
    principal = await authorize(request, "recordings:read")
    rt = runtime(request)
    recording_id = request.path_params["recording_id"]
    link_id = request.path_params["link_id"]
    revoked = await anyio.to_thread.run_sync(
        rt.playback.revoke_link,
        principal.org_id,
        principal.livemode,
        recording_id,
        link_id,
        timeutil.now(),
    )
    if revoked is None:
        raise missing("playback link", link_id, "link_id")
    rt.announce_change()  # every process on this host refuses it from its next request
    base = public_base(request, rt.settings.public_url) or ""  # relative without a Host
    return json_response(link_object(revoked, await link_secret(rt), base))


# -- the link URLs (no key) ---------------------------------------------------------------------


# URLs whose signature was verified, by (link id, query string) → their expiry: a player's seeks
# repeat the same URL, and this spares them parsing the query and an HMAC. The same inputs always
# verify the same way; the expiry is still compared with the clock at every request.
_verified: dict[tuple[str, bytes], int] = {}
_VERIFIED_LIMIT = 10_000


def _verified_expiry(secret: bytes, link_id: str, raw_query: bytes) -> int:
    cached = _verified.get((link_id, raw_query))
    if cached is not None:
        return cached
    query = parse_qs(raw_query.decode("latin-1"))
    try:
        expires = verify_playback(
            secret, link_id, _first(query, "expires"), _first(query, "signature"), 0.0
        )
    except InvalidLink as exc:
        raise PermissionDenied(
            "This playback link is not valid: it was altered or is incomplete.",
            code="invalid_signature",
            param=exc.param,
        ) from None
    except ExpiredLink:  # genuine, with an expiry of 0: expired whatever the clock says
        return 0
    if len(_verified) >= _VERIFIED_LIMIT:
        _verified.clear()
    _verified[(link_id, raw_query)] = expires
    return expires


async def granted_recording(rt: Runtime, scope: Scope) -> tuple[PlaybackLink, Recording]:
    """The link a signed URL names and its recording, if both may be served now."""
    link_id: str = scope["path_params"]["link_id"]
    secret = _secrets.get(_secret_key(rt.settings)) or await link_secret(rt)
    if _verified_expiry(secret, link_id, scope["query_string"]) <= timeutil.now():
        raise PermissionDenied(
            "This playback link has expired; ask for a new one.",
            code="expired_signature",
            param="expires",
        )
    grant = await rt.get_link_grant(link_id)
    if grant is None:  # signed by us, but its row is gone (a restored database)
        raise PermissionDenied("This playback link is not valid.", code="invalid_signature")
    link = grant.link
    if link.revoked_at is not None or grant.key_revoked:
        raise PermissionDenied("This playback link was revoked.", code="link_revoked")
    rec = await rt.get_recording(link.org_id, link.livemode, link.recording_id)
    return link, servable(rec, link.recording_id)


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


class PlaybackAudio:
    """GET/HEAD of a link's audio: a plain ASGI app on the hot path, like RecordingAudio."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_context(scope).cors = True
        rt: Runtime = scope["app"].runtime
        link, rec = await granted_recording(rt, scope)
        response = await audio_response(rt, scope["method"], request_headers(scope), rec)
        disposition = f'{link.disposition}; filename="recording-{rec.session_id}.mp3"'
        await response(scope, receive, _with_disposition(send, disposition.encode("latin-1")))


playback_audio = PlaybackAudio()


# Browsers may reuse a `private` answer without asking; a link's answers must be revalidated
# (a 304 costs little) so that a revoked link stops playing at once, from a cache too.
_NO_CACHE = (b"cache-control", b"private, no-cache")


def _with_disposition(send: Send, value: bytes) -> Send:
    async def send_with(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v)
                for k, v in message.get("headers", [])
                if k not in (b"content-disposition", b"cache-control")
            ]
            headers.append(_NO_CACHE)
            if message["status"] in (200, 206):
                headers.append((b"content-disposition", value))
            message = {**message, "headers": headers}
        await send(message)

    return send_with


async def playback_peaks(request: Request) -> Response:
    request_context(request.scope).cors = True
    rt = runtime(request)
    _, rec = await granted_recording(rt, request.scope)
    return await peaks_response(request, rt, rec)


# The shape of the ids links get (ids.new_id("lnk")): a preflight for anything else is a 404.
_LINK_ID = re.compile(r"lnk_[0-7][0-9A-HJKMNP-TV-Z]{25}")


class _Preflight:
    """OPTIONS on a link URL: what a page on another origin may send (for a fetch() with Range
    or a validator; <audio> itself needs no preflight). A plain ASGI app, as the routes expect.
    It looks nothing up (a preflight carries no signature); an id no link can have is a 404."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        link_id = scope["path_params"]["link_id"]
        if not _LINK_ID.fullmatch(link_id):
            raise missing("playback link", link_id[:40], "link_id")
        await send({"type": "http.response.start", "status": 204, "headers": _PREFLIGHT_HEADERS})
        await send({"type": "http.response.body", "body": b""})


preflight = _Preflight()
