"""nginx offload: kallrec decides the answer, nginx sends the bytes (``X-Accel-Redirect``).

With ``KALLREC_OFFLOAD=nginx`` (``kallrec serve --offload nginx``) a GET of a recording's audio is
authenticated, looked up and judged by kallrec exactly as in direct mode; errors, ``304``,
``412`` and ``416`` are answered by kallrec itself. Only a ``200`` or a single-range ``206`` is
handed to nginx: an empty ``200`` with ``X-Accel-Redirect: <prefix><variant>/<storage key>`` and
the headers of the final answer. The nginx config in ``deploy/nginx/`` maps the two variants:

* ``full/``: ``max_ranges 0``, so nginx ignores ``Range``/``If-Range`` and sends the whole file
  (kallrec already decided that a full ``200`` is the answer: no Range, a malformed one, or a
  stale ``If-Range``);
* ``range/``: nginx applies the request's ``Range``; kallrec sends a request there only when
  nginx's range parser is known to arrive at the same single range as kallrec's.

nginx re-runs its own precondition checks on the redirected request, against the file's mtime
and without kallrec's content-hash ETag (``etag off``: the ETag is added afterwards with
``add_header``). ``if_modified_since off`` and the missing ETag make ``If-Modified-Since`` and a
non-matching ``If-None-Match`` harmless there, but ``If-Match`` and ``If-Unmodified-Since`` would
be judged differently, so a request carrying either is served by kallrec directly (never seen
from browsers or download tools; identical answers, just not offloaded). For the same reason a
multi-range request is served directly: nginx's ``multipart/byteranges`` framing differs from
kallrec's (a leading CRLF, another boundary length) and it neither sorts nor merges ranges.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import quote

from kallrec.api.representation import encode_headers
from kallrec.api.stored_body import HeadersOnly

__all__ = ["FULL", "RANGE", "nginx_redirect"]

FULL = "full/"
RANGE = "range/"

# One range spec in the only forms where nginx's parser provably agrees with kallrec's: no
# whitespace, no list, lowercase unit, and numbers short enough never to hit nginx's overflow check.
_SIMPLE_RANGE = re.compile(r"bytes=(?:\d{1,18}-\d{0,18}|-\d{1,18})")
# Storage keys are made of ids; anything else is served directly rather than escaped for nginx.
_SAFE_KEY = re.compile(r"[A-Za-z0-9_./-]+")
_OWS = " \t"


def _present(value: str | None) -> bool:
    return value is not None and value.strip(_OWS) != ""


def nginx_redirect(
    *,
    prefix: str,
    key: str,
    size: int,
    headers: Mapping[str, str],
    request_headers: Mapping[str, str],
    ranges: list[tuple[int, int]] | None,
    count_bytes: Callable[[int], None],
) -> HeadersOnly | None:
    """The X-Accel-Redirect answer for a GET kallrec has decided to answer 200/206, or None when
    this request must be served directly to stay identical to direct mode.

    ``headers`` are the representation headers (ETag, Last-Modified, Cache-Control, ...);
    ``ranges`` is ``parse_range``'s result after the If-Range check (None: the full 200).
    """
    if _present(request_headers.get("if-match")) or _present(
        request_headers.get("if-unmodified-since")
    ):
        return None
    if not _SAFE_KEY.fullmatch(key) or ".." in key:
        return None
    if ranges is None:
        variant, sent = FULL, size
    else:
        if len(ranges) != 1 or not _SIMPLE_RANGE.fullmatch(request_headers.get("range", "")):
            return None
        # nginx re-checks If-Range against the ETag and Last-Modified we add: an exact copy of
        # either is judged the same way; any other spelling of a date is served directly.
        if_range = request_headers.get("if-range")
        if if_range is not None and if_range not in (headers["etag"], headers["last-modified"]):
            return None
        (start, end), variant = ranges[0], RANGE
        sent = end - start
    count_bytes(sent)  # handed to nginx: counted like bytes kallrec sends itself
    return HeadersOnly(
        200,
        encode_headers(
            {
                **headers,
                "content-type": "audio/mpeg",
                # The redirect has no body; an explicit 0 lets nginx keep the upstream connection.
                "content-length": "0",
                "x-accel-redirect": prefix + variant + quote(key),
            }
        ),
    )
