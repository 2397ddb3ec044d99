"""The SIP listeners: aiosipua's transports, with two changes.

- UDP: aiosipua's protocol asserts that the event loop's datagram transport is an
  ``asyncio.DatagramTransport``, which neither CPython's selector transport (before 3.12) nor
  uvloop's declares itself to be; the assertion fails, is logged as an error, and is harmless
  (the transport is kept from ``create_datagram_endpoint``). This protocol does without it.
- TCP and TLS: a response goes back on the connection its request came in on (RFC 3261
  §18.2.2). aiosipua sends it to the address the top Via names, which is the caller's listening
  port, not the one its connection comes from, unless the caller asked for ``rport``: every
  request on a stream is stamped as if it had.
- TLS: aiosipua's TCP transport with the server's certificate on its listening socket.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from aiosipua import SipTransport, TcpSipTransport, UdpSipTransport

from kallrec.config import Settings, parse_sip_listen


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.owner._udp_transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for a datagram sent earlier: nothing to do about it here


@dataclass
class UdpTransport(UdpSipTransport):
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: _Datagrams(self), local_addr=self.local_addr)


@dataclass
class TcpTransport(TcpSipTransport):
    def _dispatch(self, data: bytes, addr: tuple[str, int]) -> None:
        super()._dispatch(_ask_rport(data), addr)


def _ask_rport(data: bytes) -> bytes:
    """The message with ``;rport`` on its top Via (when it has none), so that the answer is
    routed to the connection's own address."""
    head, sep, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    for i, line in enumerate(lines[1:], start=1):
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"via", b"v"):
            if b"rport" not in line.lower():
                lines[i] = (
                    line.split(b",", 1)[0]
                    + b";rport"
                    + (b"," + line.split(b",", 1)[1] if b"," in line else b"")
                )
            break
    return b"\r\n".join(lines) + sep + body


@dataclass
class TlsTransport(TcpTransport):
    reliable: ClassVar[bool] = True
    context: ssl.SSLContext | None = field(default=None, repr=False)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._handle_connection,
            host=self.local_addr[0],
            port=self.local_addr[1],
            ssl=self.context,
        )


def transports(settings: Settings) -> list[tuple[str, SipTransport]]:
    """(protocol, transport) for each listener of KALLREC_SIP_LISTEN."""
    out: list[tuple[str, SipTransport]] = []
    for proto, host, port in parse_sip_listen(settings.sip_listen):
        if proto == "udp":
            out.append((proto, UdpTransport(local_addr=(host, port))))
        elif proto == "tcp":
            out.append((proto, TcpTransport(local_addr=(host, port))))
        else:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(settings.sip_tls_cert, settings.sip_tls_key)
            out.append((proto, TlsTransport(local_addr=(host, port), context=context)))
    return out
