"""Sending a converted download: a kept file while it stays pinned, or a conversion the cache had
no room for, made block by block as it is sent (kallrec.converted).

A streamed conversion's head goes out only once its source is read and its first block made, so
an unreachable store or an undecodable file is still an error answer, not a cut body. Its blocks
are made on a worker thread one at a time, only as fast as the client takes them; a client that
goes away stops the conversion.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from starlette.types import ASGIApp, Receive, Scope, Send

from kallrec.api.stored_body import SEND_PIECE, Headers
from kallrec.converted import Kept, Unkept, chunks, holding, next_chunk, source
from kallrec.runtime import Runtime


class Pinned:
    """``app`` (the kept file's response), sent while the conversion stays pinned."""

    def __init__(self, rt: Runtime, kept: Kept, app: ASGIApp) -> None:
        self.rt = rt
        self.kept = kept
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with holding(self.rt, self.kept):
            await self.app(scope, receive, send)


class Converting:
    """An unkept conversion, converted while it is sent; nothing is written anywhere."""

    def __init__(
        self,
        rt: Runtime,
        unkept: Unkept,
        headers: Headers,
        count_bytes: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.rt = rt
        self.unkept = unkept
        self.headers = headers
        self.count_bytes = count_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        u = self.unkept
        blocks = chunks(u, await source(self.rt, u.source_key, u.source_size))
        try:
            first = await next_chunk(blocks)
            await send({"type": "http.response.start", "status": 200, "headers": self.headers})
            await self._send_blocks(send, receive, blocks, first)
        finally:
            blocks.close()

    async def _send_blocks(
        self, send: Send, receive: Receive, blocks: Iterator[bytes], block: bytes | None
    ) -> None:
        gone = asyncio.Event()
        # A send to a client that went away is dropped silently (Granian, Uvicorn): without
        # watching, the rest of the call would be converted for nobody.
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive, gone))
        try:
            while block is not None:
                for at in range(0, len(block), SEND_PIECE):
                    piece = block[at : at + SEND_PIECE]
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
                self.count_bytes(len(block))
                if gone.is_set():
                    return
                block = await next_chunk(blocks)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()


async def _wait_for_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()
