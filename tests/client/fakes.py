"""An in-memory stand-in for the audio endpoint, for ``httpx.MockTransport`` tests.

It answers HEAD/GET ``/v1/recordings/{id}/audio`` like kallrec (ETag = quoted SHA-256, Range,
If-Range with strong comparison, Content-Disposition), and can be scripted: answers to return
before the real one (409/429/503…), bodies to cut after N bytes, content to swap between calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

KEY = "sk_test_unit"
BASE = "http://kallrec.test"


def error(
    status: int,
    code: str,
    *,
    type_: str = "invalid_request_error",
    retry_after: float | None = None,
    param: str | None = None,
    message: str = "nope",
) -> httpx.Response:
    headers = {"x-request-id": "req_123"}
    if retry_after is not None:
        headers["retry-after"] = str(int(retry_after))
    body = {
        "error": {
            "type": type_,
            "code": code,
            "message": message,
            "param": param,
            "request_id": "req_123",
            "retry_after": retry_after,
        }
    }
    return httpx.Response(status, json=body, headers=headers)


class CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that delivers ``data`` and then fails like a dropped connection."""

    def __init__(self, data: bytes, chunk: int = 4096) -> None:
        self.data = data
        self.chunk = chunk

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i : i + self.chunk]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i : i + self.chunk]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


class FakeAudio:
    def __init__(self, content: bytes, *, rec_id: str = "rec_1", session_id: str = "sess_1"):
        self.content = content
        self.rec_id = rec_id
        self.session_id = session_id
        self.requests: list[httpx.Request] = []
        self.scripted: list[httpx.Response] = []  # answered (in order) before the real thing
        self.cuts: list[int] = []  # successive full/partial GET bodies cut after N bytes
        self.disposition: str | None = None
        self.etag_override: str | None = None
        self.honour_if_range = True
        self.send_validators = True
        self.on_request: Callable[[FakeAudio, httpx.Request], None] | None = None

    @property
    def etag(self) -> str:
        if self.etag_override is not None:
            return self.etag_override
        return '"' + hashlib.sha256(self.content).hexdigest() + '"'

    def gets(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "GET"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request(self, request)
        assert request.headers["authorization"] == f"Bearer {KEY}"
        if self.scripted:
            return self.scripted.pop(0)
        if request.url.path != f"/v1/recordings/{self.rec_id}/audio":
            return error(404, "resource_missing", param="recording_id")
        size = len(self.content)
        headers = {
            "etag": self.etag,
            "accept-ranges": "bytes",
            "content-type": "audio/mpeg",
            "content-disposition": self.disposition
            or f'attachment; filename="recording-{self.session_id}.mp3"',
        }
        if not self.send_validators:
            del headers["etag"]
        start, status = 0, 200
        range_header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if range_header and (if_range is None or if_range == self.etag or not self.honour_if_range):
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= size:
                return httpx.Response(416, headers={"content-range": f"bytes */{size}"})
            status = 206
            headers["content-range"] = f"bytes {start}-{size - 1}/{size}"
        body = self.content[start:]
        headers["content-length"] = str(len(body))
        if request.method == "HEAD":
            return httpx.Response(status, headers=headers)
        if self.cuts:
            return httpx.Response(
                status, headers=headers, stream=CutStream(body[: self.cuts.pop(0)])
            )
        return httpx.Response(status, headers=headers, content=body)


def page(objects: list[dict[str, Any]], has_more: bool, url: str) -> httpx.Response:
    return httpx.Response(
        200,
        content=json.dumps({"object": "list", "data": objects, "has_more": has_more, "url": url}),
    )
