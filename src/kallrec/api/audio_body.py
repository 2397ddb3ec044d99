"""Sending recording bytes: zero-copy full bodies, ranges and multipart ranges.

Full bodies of local files go out through the ASGI ``http.response.pathsend`` extension when the
server offers it (Granian does: Rust streams the file, Python never touches the bytes). Everything
else is read in large chunks from the Storage, one chunk in flight at a time, so a slow reader
holds at most one chunk of memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.types import Receive, Scope, Send

from kallrec.storage import Storage

# (bytes to send first, start, end_exclusive) of the stored object.
Segment = tuple[bytes, int, int]
Headers = Sequence[tuple[bytes, bytes]]


class HeadersOnly:
    """A body-less answer (HEAD, 304, a redirect) whose headers describe what GET would send."""

    def __init__(self, status: int, headers: Headers) -> None:
        self.status = status
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class StoredBody:
    def __init__(
        self,
        *,
        status: int,
        headers: Headers,
        storage: Storage,
        key: str,
        segments: list[Segment],
        trailer: bytes = b"",
        whole_file: str | None = None,
        count_bytes: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.storage = storage
        self.key = key
        self.segments = segments
        self.trailer = trailer
        self.whole_file = whole_file
        self.count_bytes = count_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        pathsend = "http.response.pathsend" in scope.get("extensions", {})
        if self.whole_file is not None and pathsend:
            await send({"type": "http.response.pathsend", "path": self.whole_file})
            self.count_bytes(self.segments[0][2])
            return
        for prefix, start, end in self.segments:
            if prefix:
                await send({"type": "http.response.body", "body": prefix, "more_body": True})
            async for chunk in self.storage.iter_range(self.key, start, end):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                self.count_bytes(len(chunk))
        await send({"type": "http.response.body", "body": self.trailer, "more_body": False})
