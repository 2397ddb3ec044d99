"""Concurrent cache misses for one key share one lookup.

When a cached key or recording expires under load, every request in flight for it misses at
once; without this, each would run its own query (16 at concurrency 16, each on its own pooled
connection), and the pool would open and close extra SQLite connections to serve them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._calls: dict[K, asyncio.Future[V]] = {}

    async def do(self, key: K, lookup: Callable[[], Awaitable[V]]) -> V:
        """``lookup()``'s result, or the result of the one already running for ``key``."""
        call = self._calls.get(key)
        if call is None:
            call = asyncio.ensure_future(lookup())
            self._calls[key] = call
            call.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a caller that goes away does not cancel the lookup the others wait for.
        return await asyncio.shield(call)

    def _finished(self, key: K, call: asyncio.Future[V]) -> None:
        if self._calls.get(key) is call:
            del self._calls[key]
        if not call.cancelled():
            call.exception()  # retrieved, so an error nobody awaited any more is not logged

    def __len__(self) -> int:
        return len(self._calls)
