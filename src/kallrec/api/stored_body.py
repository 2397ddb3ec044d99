"""Sending recording bytes: zero-copy full bodies, ranges and multipart ranges.

Full bodies of local files go out through the ASGI ``http.response.pathsend`` extension when the
server offers it (Granian does: Rust streams the file, Python never touches the bytes). Everything
else is read from the Storage one chunk at a time and handed to the server in pieces of at most
``SEND_PIECE``, so a reader that stops reading holds one chunk and the few pieces the server
queues, never its file.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator, Sequence

from starlette.types import Receive, Scope, Send

from kallrec.storage import Storage

# (bytes to send first, start, end_exclusive) of the stored object.
Segment = tuple[bytes, int, int]
# A long body looks whether its client is still there after this many seconds or bytes,
# whichever comes first.
LOOK_INTERVAL = 0.001
LOOK_BYTES = 1024 * 1024
# The largest body message handed to the server. Granian keeps about six messages of a stalled
# download in memory (its body channel, its HTTP writer, the pending send), so this bounds what
# a client that stops reading costs: S3 reads of 1 MiB went out whole, ~7 MiB per stalled
# client. The HTTP layer's own figure, not a backend's read size (local storage happens to read
# 128 KiB too, S3 1 MiB; both are cut to this).
SEND_PIECE = 128 * 1024
# A range up to this size is a seek: read whole before answering (the read itself proves the
# bytes are there) and sent in one message, without watching for a disconnect.
SEEK_LIMIT = SEND_PIECE
Headers = Sequence[tuple[bytes, bytes]]


class HeadersOnly:
    """A body-less answer (HEAD, 304, a redirect) whose headers describe what GET would send."""

    def __init__(self, status: int, headers: Headers) -> None:
        self.status = status
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class ReadBody:
    """A short body already read (a range of at most one read): two messages, and no more."""

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


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
        if sum(end - start for _, start, end in self.segments) <= SEEK_LIMIT:
            await self._send_ranges(send, None)  # one read: nothing to stop early
            return
        # A send to a client that went away does not fail under Granian (nor Uvicorn): it is
        # dropped. Without watching for the disconnect, an abandoned `bytes=N-` download would
        # go on reading the rest of the file and handing it to nobody.
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive, gone))
        try:
            await self._send_ranges(send, gone)
        finally:
            watcher.cancel()

    async def _send_ranges(self, send: Send, gone: asyncio.Event | None) -> None:
        next_look = 0.0
        unlooked = 0
        for prefix, start, end in self.segments:
            if prefix:
                await send({"type": "http.response.body", "body": prefix, "more_body": True})
            async for chunk in self.storage.iter_range(self.key, start, end):
                for piece in _pieces(chunk):
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                self.count_bytes(len(chunk))
                unlooked += len(chunk)
                now = time.monotonic()
                if gone is not None and (unlooked >= LOOK_BYTES or now >= next_look):
                    # A send to a fast or a vanished client completes without suspending, so
                    # the watcher gets its turn only here (after every piece, this cost 8 % of
                    # a long download's throughput).
                    if now < next_look:
                        # A MiB in under a millisecond: no send waited, so this thread held the
                        # GIL throughout, and the news of a disconnect, which comes from one of
                        # Granian's threads, could not get through. Without this, a fast
                        # machine dropped whole 14 MB files into vanished connections. (After
                        # every look, it cost 12 % of the throughput of 256 slower streams.)
                        os.sched_yield()  # with the GIL released
                    next_look = now + LOOK_INTERVAL
                    unlooked = 0
                    await asyncio.sleep(0)
                    if gone.is_set():
                        return
        await send({"type": "http.response.body", "body": self.trailer, "more_body": False})


def _pieces(chunk: bytes) -> Iterator[bytes]:
    if len(chunk) <= SEND_PIECE:
        yield chunk  # a local read: no copy
        return
    for at in range(0, len(chunk), SEND_PIECE):
        yield chunk[at : at + SEND_PIECE]


async def _wait_for_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()
