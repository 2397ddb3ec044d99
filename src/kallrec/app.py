"""The ASGI application: routes, the one error renderer, request ids, metrics, lifespan."""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import anyio
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Route, Router, WebSocketRoute, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kallrec import ids
from kallrec.api import (
    console,
    download,
    peaks,
    playback,
    recording_audio,
    recordings,
    sessions,
    stream,
    system,
    webhooks,
)
from kallrec.api.context import RequestContext
from kallrec.config import Settings
from kallrec.errors import (
    ApiError,
    MethodNotAllowed,
    NotFound,
    RequestTimeout,
    ServerError,
    render_error,
    storage_unavailable,
)
from kallrec.jobs.runner import run_background
from kallrec.runtime import Runtime
from kallrec.storage import StorageError

log = logging.getLogger("kallrec.http")


Handler = Callable[[Request], Awaitable[Any]] | ASGIApp


def route(path: str, **handlers: Handler) -> Route:
    """One Route per path, so a wrong method gets a 405 listing every method the path has.

    A handler is a request → response function or, on the hot routes, a plain ASGI app."""
    if len(handlers) == 1:
        ((method, handler),) = handlers.items()
        return Route(path, handler, methods=[method])
    # A plain function is a request → response handler (Starlette's Route decides the same
    # way); anything else is an ASGI app already.
    apps = {
        m: request_response(h) if inspect.isfunction(h) else cast(ASGIApp, h)
        for m, h in handlers.items()
    }
    return Route(path, _ByMethod(apps), methods=list(handlers))


class _ByMethod:
    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = {"HEAD": apps["GET"], **apps} if "GET" in apps else apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.apps[scope["method"]](scope, receive, send)


# The hot routes (see hot_route) are plain ASGI apps; HEAD is answered by the GET handler
# (Starlette adds HEAD to GET routes).
AUDIO_ROUTE = route("/v1/recordings/{recording_id}/audio", GET=recording_audio.recording_audio)
# Playback links (issue 16): the signature in the URL is the authorization; CORS only here.
PLAYBACK_AUDIO_ROUTE = route(
    "/v1/playback/{link_id}/audio", GET=playback.playback_audio, OPTIONS=playback.preflight
)
METADATA_ROUTE = route(
    "/v1/recordings/{recording_id}",
    GET=recordings.get_recording,
    DELETE=recordings.delete_recording_route,
)

ROUTES = [
    AUDIO_ROUTE,
    route("/v1/recordings/{recording_id}/download", GET=download.recording_download),
    # The signed URL /download redirects to: no key, the signature is the authorization.
    route("/v1/recordings/{recording_id}/download/file", GET=download.download_file),
    route("/v1/recordings/{recording_id}/links", POST=playback.create_link),
    route("/v1/recordings/{recording_id}/links/{link_id}", DELETE=playback.revoke_link),
    route("/v1/recordings/{recording_id}/peaks", GET=peaks.get_peaks),
    PLAYBACK_AUDIO_ROUTE,
    route("/v1/playback/{link_id}/peaks", GET=playback.playback_peaks, OPTIONS=playback.preflight),
    route("/v1/sessions", GET=sessions.list_sessions, POST=sessions.create_session),
    route("/v1/sessions/{session_id}", GET=sessions.get_session),
    route("/v1/sessions/{session_id}/end", POST=sessions.end_session_route),
    route("/v1/sessions/{session_id}/recordings", GET=recordings.list_session_recordings),
    route("/v1/recordings", GET=recordings.list_recordings, POST=recordings.import_recording),
    METADATA_ROUTE,
    WebSocketRoute("/v1/sessions/{session_id}/connect", stream.session_stream),
    route(
        "/v1/webhook_endpoints",
        GET=webhooks.list_webhook_endpoints,
        POST=webhooks.create_webhook_endpoint,
    ),
    route(
        "/v1/webhook_endpoints/{endpoint_id}",
        GET=webhooks.get_webhook_endpoint,
        DELETE=webhooks.delete_webhook_endpoint,
    ),
    route("/v1/webhook_endpoints/{endpoint_id}/deliveries", GET=webhooks.list_webhook_deliveries),
    route("/healthz", GET=system.healthz),
    route("/readyz", GET=system.readyz),
    route("/metrics", GET=system.metrics),
    route("/openapi.json", GET=system.openapi_json),
    route("/docs", GET=system.docs),
    route(f"/docs/{system.REDOC}", GET=system.docs_asset),
    # The browser console (issue 16): a page and its two assets, shipped in the package.
    route("/console", GET=console.console_page),
    route("/console/assets/{name}", GET=console.console_asset),
]


_RECORDINGS = "/v1/recordings/"
_PLAYBACK = "/v1/playback/"
# Methods whose request body kallrec may read (and so may wait for).
_BODY_METHODS = frozenset(("POST", "PUT", "PATCH", "DELETE"))
# On every response: a browser never guesses another type than the one we send.
_NOSNIFF = (b"x-content-type-options", b"nosniff")


def hot_route(scope: Scope) -> tuple[Route, ASGIApp] | None:
    """The route of a GET/HEAD of a recording or its audio, matched without the route table.

    Most requests are these (players ask for the metadata, then the audio, then seek); the
    route table would try each route's pattern in turn. Anything else, including other methods
    on these paths (405), goes through the table."""
    path, method = scope["path"], scope["method"]
    if method not in ("GET", "HEAD") or scope.get("root_path"):
        return None
    if path.startswith(_PLAYBACK) and path.endswith("/audio"):
        link_id = path[len(_PLAYBACK) : -6]
        if not link_id or "/" in link_id:
            return None
        scope["path_params"] = {"link_id": link_id}
        scope["route"] = PLAYBACK_AUDIO_ROUTE
        return PLAYBACK_AUDIO_ROUTE, playback.playback_audio
    if not path.startswith(_RECORDINGS):
        return None
    rest = path[len(_RECORDINGS) :]
    app: ASGIApp
    if rest.endswith("/audio"):
        recording_id, route, app = rest[:-6], AUDIO_ROUTE, recording_audio.recording_audio
    else:
        recording_id, route, app = rest, METADATA_ROUTE, recordings.get_recording
    if not recording_id or "/" in recording_id:
        return None
    scope["path_params"] = {"recording_id": recording_id}
    scope["route"] = route
    return route, app


def _http_exception(exc: HTTPException, path: str) -> ApiError:
    if exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        return MethodNotAllowed(
            f"{path} does not support this method; allowed: {allow}.",
            headers={"allow": allow} if allow else None,
        )
    if exc.status_code == 404:
        return NotFound(f"Unrecognized request URL: {path}.", code="route_not_found")
    return ApiError(exc.detail, status=exc.status_code)


class KallrecApp:
    def __init__(self, settings: Settings, *, background: bool = True) -> None:
        self.settings = settings
        self.background = background
        self.runtime: Runtime | None = None
        self.router = Router(ROUTES, lifespan=self._lifespan)

    def start(self) -> Runtime:
        if self.runtime is None:
            self.runtime = Runtime(self.settings)
        return self.runtime

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: object) -> AsyncIterator[None]:
        rt = self.start()
        async with anyio.create_task_group() as tg:
            if self.background:
                tg.start_soon(run_background, rt)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await rt.auth.flush_last_used()
        rt.close()
        self.runtime = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Routers raise HTTPException for 404/405 (instead of answering in plain text) when an
        # app is in the scope; that is how unknown routes reach the one error renderer.
        scope["app"] = self
        if scope["type"] != "http":
            await self.router(scope, receive, send)
            return
        self.start().refresh_caches()
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        request_id = ids.request_id()
        context = RequestContext(request_id)
        context.install(scope)
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode()), _NOSNIFF]
                extra += [(k.encode(), v.encode()) for k, v in context.rate_headers.items()]
                if context.cors:  # a playback link's answer, errors included
                    extra += playback.CORS_HEADERS
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if scope["method"] in _BODY_METHODS:
            receive = _body_deadline(receive, self.settings.body_timeout_seconds)
        try:
            try:
                hot = hot_route(scope)
                if hot is not None:
                    await hot[1](scope, receive, send_with_headers)
                else:
                    await self.router(scope, receive, send_with_headers)
            except HTTPException as exc:
                raise _http_exception(exc, scope["path"]) from None
        except (ApiError, StorageError) as exc:
            if response_started:
                raise
            if isinstance(exc, StorageError):  # any handler that touched storage
                log.warning("request %s: storage unavailable: %s", request_id, exc)
                exc = storage_unavailable(
                    "Audio storage is unavailable right now; try again shortly."
                )
            await self._send_error(exc, context, scope["method"], send_with_headers)
        except ClientDisconnect:
            status = 499  # nginx's "client closed request", for the metrics
            log.info("request %s: the client went away while sending its body", request_id)
        except Exception:
            if response_started:  # the client went away mid-body, or storage failed mid-read
                log.warning("request %s ended early", request_id, exc_info=True)
            else:
                log.exception("request %s failed", request_id)
                error = ServerError(
                    "An internal error occurred. Quote the request id if you report it."
                )
                await self._send_error(error, context, scope["method"], send_with_headers)
        finally:
            route = scope.get("route")
            label = route.path if route is not None else "unmatched"
            assert self.runtime is not None
            self.runtime.metrics.observe(
                label, scope["method"], status, time.perf_counter() - started
            )

    async def _send_error(
        self, error: ApiError, context: RequestContext, method: str, send: Send
    ) -> None:
        status, body, headers = render_error(error, context.request_id)
        if error.headers.get("x-ratelimit-limit"):  # a 429 carries its own
            context.rate_headers = {}
        raw_headers = [(k.encode(), v.encode()) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        body_out = b"" if method == "HEAD" else body
        await send({"type": "http.response.body", "body": body_out, "more_body": False})


def _body_deadline(receive: Receive, seconds: float) -> Receive:
    """``receive`` that gives up on a request body that stops arriving for ``seconds``.

    Granian closes connections that never finish their request head, but a body that stalls
    would hold its slot (and the handler) forever. Only the body is timed: once it is complete,
    receive() is left to wait for the disconnect that downloads listen for."""
    complete = False

    async def receive_body() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        with anyio.move_on_after(seconds):
            message = await receive()
            complete = message["type"] != "http.request" or not message.get("more_body")
            return message
        raise RequestTimeout(
            f"The request body stopped arriving for {seconds:g} seconds.",
            headers={"connection": "close"},
        )

    return receive_body


def create_app(settings: Settings | None = None, *, background: bool = True) -> KallrecApp:
    """The app; with no settings they come from KALLREC_* (how `kallrec serve` workers start)."""
    return KallrecApp(settings or Settings.from_env(), background=background)
