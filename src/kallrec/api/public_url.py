"""The address clients reach this server at, for the absolute URLs kallrec hands out.

``KALLREC_PUBLIC_URL`` when set (behind a proxy, the only reliable answer); otherwise the scheme
the request came in with and its ``Host`` header: what the client itself called. Forwarded
headers (``X-Forwarded-Proto``, ``Forwarded``) are not trusted: anyone can send them, and an
operator who puts a proxy in front sets KALLREC_PUBLIC_URL instead.
"""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection

# A host name or IP literal and an optional port: anything else in Host is not put in a URL.
_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def public_base(conn: HTTPConnection, public_url: str) -> str | None:
    """``http(s)://host[:port]`` without a trailing slash; None when there is no public URL and
    the request's Host header is absent or not a host (then only a relative URL is right)."""
    if public_url:
        return public_url.rstrip("/")
    host = conn.headers.get("host", "")
    if not _HOST.fullmatch(host):
        return None
    scheme = "https" if conn.url.scheme in ("https", "wss") else "http"
    return f"{scheme}://{host}"
