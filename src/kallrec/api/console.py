"""The browser console at /console (issue 16): one server-rendered page, a script and a style
sheet, all shipped inside the package (kallrec/static/console/), so it works offline and loads
nothing from other hosts.

The page is the same for everyone: who is signed in lives in the browser tab (the key in
sessionStorage, sent only as an Authorization header by the script), never in the page or a URL.
A strict Content-Security-Policy allows only this origin's script, styles and API, and audio from
this origin (the console plays recordings through playback links, which are same-origin URLs).
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from kallrec.errors import NotFound

_ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "media-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "content-security-policy": _CSP,
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files("kallrec.static").joinpath("console", name).read_bytes()


@functools.cache
def _page() -> bytes:
    # The assets' URLs carry a digest of their content, so a new version is never mixed with a
    # cached old one, and the assets themselves can be cached for long.
    digest = hashlib.sha256(b"".join(_asset(name) for name in sorted(_ASSETS))).hexdigest()[:12]
    return _asset("index.html").replace(b"{{version}}", digest.encode())


async def console_page(request: Request) -> Response:
    return Response(_page(), media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)


async def console_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _ASSETS:
        raise NotFound(f"Unrecognized request URL: {request.url.path}.", code="route_not_found")
    return Response(
        _asset(name),
        media_type=_ASSETS[name],
        headers={"cache-control": "public, max-age=31536000, immutable"},
    )
