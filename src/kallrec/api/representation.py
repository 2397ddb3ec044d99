"""What every answer about a ready recording's audio carries, computed once per recording.

A ready row never changes (a delete or a purge turns the answer into a 404 or 410 instead), so
the validators and headers derived from it are memoized on the row itself: the hot path does
not format a date or encode a header per request. The memo is bounded and keyed by the whole
row, so a row that did change can never be answered with an old entry.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from kallrec.db.models import Recording
from kallrec.http.conditional import http_date

MP3 = "audio/mpeg"
RawHeaders = list[tuple[bytes, bytes]]


def encode_headers(headers: Mapping[str, str]) -> RawHeaders:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


@dataclass(frozen=True, slots=True)
class AudioRepresentation:
    etag: str
    # Sent with every 200, 206 and 304: validators, Accept-Ranges, Cache-Control, filename.
    headers: Mapping[str, str]
    raw: tuple[tuple[bytes, bytes], ...]
    # A full 200 (and HEAD): the above plus Content-Type and Content-Length.
    raw_full: tuple[tuple[bytes, bytes], ...]


@functools.lru_cache(maxsize=8192)
def audio_representation(rec: Recording) -> AudioRepresentation:
    assert rec.ready_at is not None and rec.size is not None and rec.content_hash
    headers = {
        "accept-ranges": "bytes",
        "etag": f'"{rec.content_hash}"',
        "last-modified": http_date(rec.ready_at),
        "cache-control": "private",
        "content-disposition": f'attachment; filename="recording-{rec.session_id}.mp3"',
    }
    raw = tuple(encode_headers(headers))
    full = (*raw, (b"content-type", MP3.encode()), (b"content-length", str(rec.size).encode()))
    return AudioRepresentation(
        etag=headers["etag"],
        headers=headers,
        raw=raw,
        raw_full=full,
    )
