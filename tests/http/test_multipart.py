import email
import email.policy
import re

import pytest

from kallrec.http.multipart import MultipartPlan, new_boundary, plan_multipart
from kallrec.http.ranges import parse_range

# Every byte value, so a slice that is off by one or mangled by a text codec shows up.
DATA = bytes(range(256)) * 40


def assemble(plan: MultipartPlan, data: bytes) -> bytes:
    chunks = []
    for header, start, end in plan.parts:
        chunks.append(header)
        chunks.append(data[start:end])
    chunks.append(plan.trailer)
    return b"".join(chunks)


def parse_with_email(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    assert message.is_multipart()
    assert not message.defects
    result = []
    for part in message.iter_parts():
        assert not part.defects
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        result.append((part["Content-Type"], part["Content-Range"], payload))
    return result


def parse_by_hand(boundary: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """A strict reading of RFC 9110 §14.6 / RFC 2046 framing, independent of `email`."""
    delimiter = b"\r\n--" + boundary.encode()
    assert body.startswith(delimiter[2:] + b"\r\n")
    assert body.endswith(delimiter + b"--\r\n")
    inner = body[len(delimiter) - 2 : -len(delimiter + b"--\r\n")]
    parts = []
    for chunk in inner.split(delimiter):
        assert chunk.startswith(b"\r\n")
        head, sep, payload = chunk[2:].partition(b"\r\n\r\n")
        assert sep
        headers = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n"))
        parts.append((headers, payload))
    return parts


RANGE_CASES = [
    ("one-range", "bytes=10-19"),
    ("two-ranges", "bytes=0-0,-1"),
    ("first-and-last-byte", "bytes=0-0,10239-10239"),
    ("several", "bytes=0-99,200-299,5000-,-10"),
    ("sixteen", "bytes=" + ",".join(f"{i * 600}-{i * 600 + 10}" for i in range(16))),
    ("whole-file", "bytes=0-"),
]


@pytest.mark.parametrize("header", [pytest.param(h, id=i) for i, h in RANGE_CASES])
def test_body_parses_into_the_right_slices(header: str) -> None:
    ranges = parse_range(header, len(DATA))
    assert ranges is not None
    boundary = new_boundary()
    plan = plan_multipart(ranges, len(DATA), "audio/mpeg", boundary)
    body = assemble(plan, DATA)

    assert plan.content_type == f"multipart/byteranges; boundary={boundary}"
    assert plan.content_length == len(body)
    assert [(start, end) for _, start, end in plan.parts] == ranges

    expected = [
        ("audio/mpeg", f"bytes {start}-{end - 1}/{len(DATA)}", DATA[start:end])
        for start, end in ranges
    ]
    assert parse_with_email(plan.content_type, body) == expected
    by_hand = [
        (headers["Content-Type"], headers["Content-Range"], payload)
        for headers, payload in parse_by_hand(boundary, body)
    ]
    assert by_hand == expected


def test_exact_layout() -> None:
    plan = plan_multipart([(0, 2), (5, 6)], 8, "audio/mpeg", "XYZ")
    assert plan.parts == [
        (b"--XYZ\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 0-1/8\r\n\r\n", 0, 2),
        (b"\r\n--XYZ\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 5-5/8\r\n\r\n", 5, 6),
    ]
    assert plan.trailer == b"\r\n--XYZ--\r\n"
    assert plan.content_length == len(assemble(plan, b"abcdefgh"))


def test_boundary_that_needs_quoting() -> None:
    boundary = "a b:c"
    plan = plan_multipart([(0, 1), (2, 3)], 4, "audio/mpeg", boundary)
    assert plan.content_type == 'multipart/byteranges; boundary="a b:c"'
    body = assemble(plan, b"wxyz")
    assert parse_with_email(plan.content_type, body) == [
        ("audio/mpeg", "bytes 0-0/4", b"w"),
        ("audio/mpeg", "bytes 2-2/4", b"y"),
    ]


def test_new_boundary_is_random_and_valid() -> None:
    boundaries = {new_boundary() for _ in range(100)}
    assert len(boundaries) == 100
    for boundary in boundaries:
        assert re.fullmatch(r"[0-9a-f]{20}", boundary)


@pytest.mark.parametrize(
    ("ranges", "size", "content_type", "boundary"),
    [
        pytest.param([], 10, "audio/mpeg", "b", id="no-ranges"),
        pytest.param([(0, 0)], 10, "audio/mpeg", "b", id="empty-range"),
        pytest.param([(5, 3)], 10, "audio/mpeg", "b", id="reversed-range"),
        pytest.param([(-1, 3)], 10, "audio/mpeg", "b", id="negative-start"),
        pytest.param([(0, 11)], 10, "audio/mpeg", "b", id="past-end"),
        pytest.param([(0, 1)], 10, "audio/mpeg", "", id="empty-boundary"),
        pytest.param([(0, 1)], 10, "audio/mpeg", "x" * 71, id="long-boundary"),
        pytest.param([(0, 1)], 10, "audio/mpeg", "b\r\nX: y", id="crlf-boundary"),
        pytest.param([(0, 1)], 10, "audio/mpeg", "ab ", id="trailing-space-boundary"),
        pytest.param([(0, 1)], 10, "audio/mpeg", 'a"b', id="quote-boundary"),
        pytest.param([(0, 1)], 10, "audio/mpeg\r\nX: y", "b", id="crlf-content-type"),
        pytest.param([(0, 1)], 10, "audio/mp\u00e9g", "b", id="non-ascii-content-type"),
    ],
)
def test_invalid_arguments_raise_value_error(
    ranges: list[tuple[int, int]], size: int, content_type: str, boundary: str
) -> None:
    with pytest.raises(ValueError):
        plan_multipart(ranges, size, content_type, boundary)
