"""Layout of a ``multipart/byteranges`` response body (RFC 9110 §14.6), computed up front.

The plan holds only the small framing byte strings and the offsets of the slices, so the caller
can send ``Content-Length`` before reading any file data and then stream each slice straight from
storage::

    for part_header, start, end in plan.parts:
        send(part_header)
        send(data[start:end])
    send(plan.trailer)

The layout follows the example in RFC 9110 §14.6: the body starts directly with the first
``--boundary`` line (no preamble), each later part header starts with the CRLF that ends the
previous slice, and the trailer is ``CRLF --boundary-- CRLF``.
"""

import secrets
from dataclasses import dataclass

__all__ = ["MultipartPlan", "new_boundary", "plan_multipart"]

_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# RFC 2046 §5.1.1 bchars. Checked so a bad boundary fails loudly here instead of producing a body
# no client can split.
_BCHARS = frozenset(_ALNUM + "'()+_,-./:=? ")
# RFC 9110 §5.6.2 tchar: a boundary made only of these can go unquoted in Content-Type.
_TCHARS = frozenset(_ALNUM + "!#$%&'*+-.^_`|~")


def new_boundary() -> str:
    """A random boundary: 80 bits make a collision with the audio bytes negligible."""
    return secrets.token_hex(10)


@dataclass(frozen=True)
class MultipartPlan:
    """Everything needed to send a multipart/byteranges body without buffering it.

    ``parts`` is ``(part_header, start, end_exclusive)``: send ``part_header`` and then the bytes
    ``[start, end_exclusive)`` of the representation, for each part in order, then ``trailer``.
    """

    content_type: str
    content_length: int
    parts: list[tuple[bytes, int, int]]
    trailer: bytes


def plan_multipart(
    ranges: list[tuple[int, int]], size: int, content_type: str, boundary: str
) -> MultipartPlan:
    """Plan the body for ``ranges`` (as returned by ``parse_range``) of a ``size``-byte file.

    ``content_type`` is the representation's own type (e.g. ``audio/mpeg``), repeated in each
    part. Raises ``ValueError`` on arguments that would produce a corrupt body.
    """
    if not ranges:
        raise ValueError("multipart/byteranges needs at least one range")
    if not 1 <= len(boundary) <= 70 or boundary[-1] == " " or not _BCHARS.issuperset(boundary):
        raise ValueError(f"invalid multipart boundary: {boundary!r}")
    if "\r" in content_type or "\n" in content_type:
        raise ValueError("content type must not contain line breaks")

    # Encoded once: identical for every part. Non-ASCII types raise UnicodeEncodeError, which is
    # a ValueError, as documented.
    type_line = f"Content-Type: {content_type}\r\n".encode("ascii")
    delimiter = f"--{boundary}\r\n".encode("ascii")
    parts: list[tuple[bytes, int, int]] = []
    length = 0
    for index, (start, end) in enumerate(ranges):
        if not 0 <= start < end <= size:
            raise ValueError(f"range ({start}, {end}) is empty or outside 0..{size}")
        header = b"".join(
            (
                b"\r\n" if index else b"",
                delimiter,
                type_line,
                f"Content-Range: bytes {start}-{end - 1}/{size}\r\n\r\n".encode("ascii"),
            )
        )
        parts.append((header, start, end))
        length += len(header) + (end - start)
    trailer = f"\r\n--{boundary}--\r\n".encode("ascii")
    # bchars has no '"' or backslash, so wrapping in quotes is a valid quoted-string as is.
    param = boundary if _TCHARS.issuperset(boundary) else f'"{boundary}"'
    return MultipartPlan(
        content_type=f"multipart/byteranges; boundary={param}",
        content_length=length + len(trailer),
        parts=parts,
        trailer=trailer,
    )
