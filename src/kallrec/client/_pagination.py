"""Cursor pagination (spec §3.3): a page of objects, and iterators that fetch the next ones.

Iterating a page yields every object of the list, fetching further pages (``starting_after`` the
last id, or ``ending_before`` the first id when the listing was started with ``ending_before``)
while ``has_more`` is true. ``.data`` is just this page.

    for rec in client.recordings.list(status="ready"):            # sync: all of them
    page = await aclient.recordings.list(limit=10)                  # async: the first page
    async for rec in aclient.recordings.list(status="ready"):     # async: all of them
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["AsyncPage", "AsyncPager", "HasId", "SyncPage"]


class HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=HasId)
Params = dict[str, Any]


def _next_params(params: Params, data: list[Any]) -> Params | None:
    if not data:  # a server that says has_more with an empty page would loop forever
        return None
    nxt = dict(params)
    if params.get("ending_before"):
        nxt["ending_before"] = data[0].id
    else:
        nxt.pop("ending_before", None)
        nxt["starting_after"] = data[-1].id
    if nxt == params:
        return None
    return nxt


class SyncPage(Generic[T]):
    """One page of a list; iterating it walks all the following pages too."""

    def __init__(
        self,
        data: list[T],
        *,
        has_more: bool,
        url: str | None,
        params: Params,
        fetch: Callable[[Params], SyncPage[T]],
    ) -> None:
        self.data = data
        self.has_more = has_more
        self.url = url
        self._params = params
        self._fetch = fetch

    def __repr__(self) -> str:
        return f"<SyncPage of {len(self.data)} (has_more={self.has_more})>"

    def next_page(self) -> SyncPage[T] | None:
        if not self.has_more:
            return None
        params = _next_params(self._params, self.data)
        return None if params is None else self._fetch(params)

    def iter_pages(self) -> Iterator[SyncPage[T]]:
        page: SyncPage[T] | None = self
        while page is not None:
            yield page
            page = page.next_page()

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


class AsyncPage(Generic[T]):
    """One page of a list (async); ``async for`` walks all the following pages too."""

    def __init__(
        self,
        data: list[T],
        *,
        has_more: bool,
        url: str | None,
        params: Params,
        fetch: Callable[[Params], Awaitable[AsyncPage[T]]],
    ) -> None:
        self.data = data
        self.has_more = has_more
        self.url = url
        self._params = params
        self._fetch = fetch

    def __repr__(self) -> str:
        return f"<AsyncPage of {len(self.data)} (has_more={self.has_more})>"

    async def next_page(self) -> AsyncPage[T] | None:
        if not self.has_more:
            return None
        params = _next_params(self._params, self.data)
        return None if params is None else await self._fetch(params)

    async def iter_pages(self) -> AsyncIterator[AsyncPage[T]]:
        page: AsyncPage[T] | None = self
        while page is not None:
            yield page
            page = await page.next_page()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


class AsyncPager(Generic[T]):
    """What async ``list()`` returns: await it for the first page, or ``async for`` every item."""

    def __init__(self, fetch: Callable[[Params], Awaitable[AsyncPage[T]]], params: Params) -> None:
        self._fetch = fetch
        self._params = params

    def __await__(self) -> Generator[Any, None, AsyncPage[T]]:
        return self._fetch(self._params).__await__()

    async def __aiter__(self) -> AsyncIterator[T]:
        page = await self._fetch(self._params)
        async for item in page:
            yield item
