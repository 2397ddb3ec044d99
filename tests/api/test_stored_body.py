"""StoredBody against a real Storage: what reaches the server, message by message."""

from __future__ import annotations

import os
from pathlib import Path

import anyio

from kallrec.api.stored_body import SEND_PIECE, StoredBody
from kallrec.storage.memory import MemoryStorage


async def _sent(body: StoredBody) -> list[dict]:
    messages: list[dict] = []

    async def receive() -> dict:
        await anyio.sleep_forever()  # a client that stays connected
        raise AssertionError

    async def send(message: dict) -> None:
        messages.append(message)

    await body({"type": "http", "extensions": {}}, receive, send)
    return messages


async def test_large_storage_reads_go_out_in_bounded_pieces(tmp_path: Path) -> None:
    # MemoryStorage yields a whole range in one read (S3 yields 1 MiB): a server keeps several
    # body messages of a client that stopped reading, so none may be larger than SEND_PIECE.
    data = os.urandom(3 * SEND_PIECE + 12_345)
    storage = MemoryStorage()
    src = tmp_path / "obj"
    src.write_bytes(data)
    await storage.put_file("k", src)
    counted: list[int] = []
    segments = [(b"--a\r\n", 10, 2 * SEND_PIECE + 7), (b"--b\r\n", SEND_PIECE, len(data))]
    body = StoredBody(
        status=206,
        headers=[],
        storage=storage,
        key="k",
        segments=segments,
        trailer=b"--end",
        count_bytes=counted.append,
    )
    messages = await _sent(body)

    assert messages[0]["type"] == "http.response.start"
    parts = [m["body"] for m in messages[1:]]
    assert all(m["type"] == "http.response.body" for m in messages[1:])
    assert max(len(p) for p in parts) <= SEND_PIECE
    assert [m["more_body"] for m in messages[1:]] == [True] * (len(parts) - 1) + [False]
    first, second = data[10 : 2 * SEND_PIECE + 7], data[SEND_PIECE:]
    assert b"".join(parts) == b"--a\r\n" + first + b"--b\r\n" + second + b"--end"
    assert sum(counted) == len(first) + len(second)
