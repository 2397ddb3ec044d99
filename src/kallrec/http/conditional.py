"""Conditional request evaluation (RFC 9110 §13) for a resource with a strong ETag.

Nothing here raises on a header value: malformed input degrades to the answer that is always
safe to give, which is "serve the full representation" except for ``If-Match``, whose purpose is
to stop a client acting on the wrong representation and which therefore fails closed.

Decisions the RFC leaves open:

* A header whose value is empty or only whitespace counts as absent. (Strictly, an empty
  ``If-Match`` is a list of zero tags that never matches, but a 412 for a stray empty header helps
  nobody; Django does the same.)
* ``If-Match``: non-blank but with no member that strongly matches, including pure garbage or an
  unreasonably long value, fails with 412.
* ``If-None-Match``: malformed members are skipped; an unreasonably long value is treated as not
  matching (full response, never a wrong 304), and still suppresses ``If-Modified-Since``.
* Dates: IMF-fixdate, RFC 850 and asctime forms are accepted (RFC 9110 §5.6.7), a date without a
  zone is taken as GMT, and a value that is not a single date (e.g. two comma-joined dates) is
  ignored, as §13.1.3/§13.1.4 require.
* Methods are case-sensitive (RFC 9110 §9.1): only ``GET`` and ``HEAD`` get 304s.
* ``If-Range`` that is present but empty or unparseable disables the range (full 200), the answer
  that is never wrong.
* Times compare in whole seconds, the resolution of HTTP-date; ``last_modified`` is floored,
  the same rounding ``http_date`` applies when it is sent as ``Last-Modified``.
"""

import enum
import math
from collections.abc import Iterator
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime

__all__ = ["Outcome", "evaluate_preconditions", "http_date", "if_range_allows_partial"]

_OWS = " \t"
# Far beyond any real client's list of cached validators; bounds the scan of hostile headers.
_MAX_LIST_LENGTH = 8192
# The longest valid HTTP-date (RFC 850 with "Wednesday") is 33 characters.
_MAX_DATE_LENGTH = 64
_SAFE_METHODS = frozenset(("GET", "HEAD"))


class Outcome(enum.Enum):
    """What the request handler should do after evaluating the preconditions."""

    PROCEED = enum.auto()
    NOT_MODIFIED = enum.auto()  # 304
    PRECONDITION_FAILED = enum.auto()  # 412


def http_date(timestamp: float) -> str:
    """IMF-fixdate for a Unix timestamp, e.g. ``Wed, 21 Oct 2015 07:28:00 GMT``."""
    return formatdate(timestamp, usegmt=True)


def _present(value: str | None) -> str | None:
    """The value without surrounding whitespace, or None when the header counts as absent."""
    if value is None:
        return None
    return value.strip(_OWS) or None


def _entity_tags(value: str) -> Iterator[tuple[bool, str]]:
    """``(weak, opaque_tag)`` for each well-formed member of an entity-tag list.

    A hand scanner rather than ``split(",")``: an opaque tag may itself contain commas. Members
    that are not ``[W/]"..."`` followed by a comma or the end are skipped. Linear: each
    closing-quote search starts past the previous one (no element can start with a quote before
    it), and the comma searches only move forward.
    """
    n = len(value)
    i = 0
    while i < n:
        if value[i] in " \t,":
            i += 1
            continue
        weak = value.startswith('W/"', i)
        start = i + 2 if weak else i
        if value.startswith('"', start):
            close = value.find('"', start + 1)
            if close != -1:
                j = close + 1
                while j < n and value[j] in _OWS:
                    j += 1
                if j == n or value[j] == ",":
                    yield weak, value[start : close + 1]
                    i = j + 1
                    continue
        comma = value.find(",", i + 1)
        if comma == -1:
            return
        i = comma + 1


def _split_own_etag(etag: str) -> tuple[bool, str]:
    if etag.startswith("W/"):
        return True, etag[2:]
    return False, etag


def _if_match_passes(value: str, etag: str) -> bool:
    # A client revalidating sends back exactly the tag it got; skip the scanner for that.
    if value == "*" or (value == etag and not etag.startswith("W/")):
        return True
    if len(value) > _MAX_LIST_LENGTH:
        return False
    own_weak, own_tag = _split_own_etag(etag)
    if own_weak:
        # Strong comparison can never succeed against a weak validator.
        return False
    return any(not weak and tag == own_tag for weak, tag in _entity_tags(value))


def _if_none_match_matches(value: str, etag: str) -> bool:
    if value == "*" or value == etag:
        return True
    if len(value) > _MAX_LIST_LENGTH:
        return False
    _, own_tag = _split_own_etag(etag)
    return any(tag == own_tag for _, tag in _entity_tags(value))


def _parse_http_date(value: str) -> int | None:
    """Unix seconds of an HTTP-date, or None if the value is not exactly one valid date."""
    value = value.strip(_OWS)
    # Every HTTP-date form has at most one comma, so more means a list, which must be ignored.
    if len(value) > _MAX_DATE_LENGTH or value.count(",") > 1:
        return None
    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            # asctime dates carry no zone, and "-0000" parses as naive; HTTP dates are GMT.
            parsed = parsed.replace(tzinfo=UTC)
        return math.floor(parsed.timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def evaluate_preconditions(
    *,
    method: str,
    etag: str,
    last_modified: float,
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
) -> Outcome:
    """Evaluate the preconditions in the order of RFC 9110 §13.2.2 (steps 1-4).

    ``etag`` is the current strong ETag exactly as sent, quotes included; ``last_modified`` is a
    Unix timestamp. Step 5 (``If-Range``) is ``if_range_allows_partial``, to be applied
    only when this returns ``PROCEED`` and the request has a ``Range`` header.
    """
    modified = math.floor(last_modified)

    if (match := _present(if_match)) is not None:
        if not _if_match_passes(match, etag):
            return Outcome.PRECONDITION_FAILED
    elif (unmodified_since := _present(if_unmodified_since)) is not None:
        date = _parse_http_date(unmodified_since)
        if date is not None and modified > date:
            return Outcome.PRECONDITION_FAILED

    if (none_match := _present(if_none_match)) is not None:
        if _if_none_match_matches(none_match, etag):
            if method in _SAFE_METHODS:
                return Outcome.NOT_MODIFIED
            return Outcome.PRECONDITION_FAILED
    elif method in _SAFE_METHODS and (modified_since := _present(if_modified_since)) is not None:
        date = _parse_http_date(modified_since)
        if date is not None and modified <= date:
            return Outcome.NOT_MODIFIED

    return Outcome.PROCEED


def if_range_allows_partial(if_range: str | None, *, etag: str, last_modified: float) -> bool:
    """Whether a ``Range`` may be honoured given ``If-Range`` (RFC 9110 §13.1.5).

    Only meaningful when the request has a ``Range`` header (the RFC says to ignore ``If-Range``
    otherwise). False means "ignore Range and send the full 200".
    """
    if if_range is None:
        return True
    value = if_range.strip(_OWS)
    if value.startswith(('"', "W/")):
        # Strong comparison: a weak tag on either side never matches.
        return not value.startswith("W/") and not etag.startswith("W/") and value == etag
    date = _parse_http_date(value)
    return date is not None and date == math.floor(last_modified)
