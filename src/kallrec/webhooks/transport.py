"""The sender's connections: each goes to an address that was checked just before connecting.

Checking a URL when the endpoint is created is not enough: its name can resolve to another
address by the time an event goes out (DNS rebinding), and a receiver's DNS can answer
differently each time. So every new connection resolves the host once, refuses it when any
address it resolved to is not allowed (``kallrec.network_addresses``), and then connects to one
of those very addresses, never to the name again. Only the TCP connection changes: httpcore still
speaks TLS to the *host name* (SNI and certificate verification), and the ``Host`` header is the
URL's. Connections are pooled per host name, so a kept-alive one was checked when it was opened.

This is an httpcore network backend (``GuardedBackend``) under a minimal httpx transport
(``GuardedTransport``), because ``httpx.AsyncHTTPTransport`` offers no way to choose the backend.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio
import httpcore
import httpx

from kallrec.network_addresses import (
    IPAddress,
    IPNetwork,
    as_address,
    first_blocked,
    literal_address,
)

# (host, port) -> every address a connection to the host could use, in the resolver's order.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class UnresolvableHost(Exception):
    """The host name has no address (or the resolver failed or timed out)."""


class BlockedAddress(Exception):
    """The host is, or resolves to, an address webhooks may not reach; nothing was connected."""

    def __init__(self, host: str, address: IPAddress, kind: str) -> None:
        super().__init__(f"{host} resolves to {address} ({kind})")
        self.host, self.address, self.kind = host, address, kind


async def system_resolve(
    host: str, port: int, *, limiter: anyio.CapacityLimiter | None = None
) -> list[IPAddress]:
    """The addresses the system resolver gives for ``host``; a numeric host is read without
    asking it (``kallrec.network_addresses.parse_ipv4``), so ``127.1`` never becomes a lookup.

    ``limiter``: run ``getaddrinfo`` on threads of that capacity, so that slow DNS servers of some
    receivers cannot hold the threads everyone else needs (the sender gives each attempt its own);
    without one, the event loop's resolver is used.
    """
    try:
        literal = literal_address(host)
    except ValueError as exc:
        raise UnresolvableHost(str(exc)) from None
    if literal is not None:
        return [literal]
    try:
        if limiter is None:
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        else:
            infos = await anyio.to_thread.run_sync(
                _getaddrinfo, host, port, limiter=limiter, abandon_on_cancel=True
            )
    except (OSError, UnicodeError) as exc:  # socket.gaierror, IDNA failures
        raise UnresolvableHost(f"{host}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = as_address(str(info[4][0]))
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(f"{host}: no address")
    return addresses


def _getaddrinfo(host: str, port: int) -> list[Any]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to checked addresses: resolve once, check them all, connect to one."""

    def __init__(
        self,
        allowed: Iterable[IPNetwork],
        resolve: Resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allowed = tuple(allowed)
        self.resolve = resolve
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(
                f"resolving {host} took longer than {timeout} s"
            ) from None
        blocked = first_blocked(addresses, self.allowed)
        if blocked is not None:
            raise BlockedAddress(host, *blocked)
        return await self._connect_any(addresses, port, timeout, local_address, socket_options)

    async def _connect_any(
        self,
        addresses: Sequence[IPAddress],
        port: int,
        connect_timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        """The first of ``addresses`` that accepts, in the resolver's order."""
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address),
                    port,
                    timeout=connect_timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # the resolver never returns an empty list
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent over Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class GuardedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 through an httpcore pool on a ``GuardedBackend``. Errors are httpcore's (or
    ``BlockedAddress``), not mapped to httpx's: the sender only categorizes them."""

    def __init__(
        self,
        backend: GuardedBackend,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        response = await self._pool.handle_async_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseBody(response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    async def __aiter__(self) -> Any:
        async for chunk in self._response.aiter_stream():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()
