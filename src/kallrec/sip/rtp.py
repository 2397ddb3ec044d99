"""RTP packets (RFC 3550) and the jitter buffer that puts them back in order.

Pure: no sockets, no clock of its own. ``media.py`` feeds datagrams in and writes what comes out.

The jitter buffer orders one stream's packets by extended sequence number (the 16-bit number
plus the count of its wrap-arounds) and hands them on in order once the next expected one is
there, or once ``depth`` packets wait behind a gap (the missing ones are counted lost: their span
of the track stays a hole, which reads back as silence). A packet that turns up after its gap was
given up is still handed on (the track writer places audio by timestamp, so a late packet lands
where it belongs and fills its gap) and un-counts its loss; a duplicate is dropped. A new SSRC
(the sender restarted, a transfer, a re-INVITE to another media source) flushes what the old
one left and starts a new sequence space.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

RTP_VERSION = 2
HEADER_BYTES = 12
# How far apart two sequence numbers may be and still be taken as the same stream's neighbours
# (RFC 3550 A.1's MAX_DROPOUT); a bigger jump is a restarted sender.
MAX_DROPOUT = 3000
# Sequence numbers remembered after release, to drop duplicates and recognise late packets.
REMEMBERED = 1024


class MalformedRtp(ValueError):
    """A datagram that is not an RTP packet kallrec can read."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse(datagram: bytes) -> RtpPacket:
    """The packet in ``datagram``; raises MalformedRtp for anything else (RTCP included)."""
    if len(datagram) < HEADER_BYTES:
        raise MalformedRtp("shorter than an RTP header")
    first, second, sequence, timestamp, ssrc = struct.unpack_from("!BBHII", datagram)
    if first >> 6 != RTP_VERSION:
        raise MalformedRtp("not RTP version 2")
    payload_type = second & 0x7F
    if 72 <= payload_type <= 76:  # RTCP shares the port on rtcp-mux senders (RFC 5761)
        raise MalformedRtp("RTCP")
    offset = HEADER_BYTES + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 16-bit profile, 16-bit length in words
        if len(datagram) < offset + 4:
            raise MalformedRtp("truncated header extension")
        (words,) = struct.unpack_from("!H", datagram, offset + 2)
        offset += 4 + 4 * words
    end = len(datagram)
    if first & 0x20:  # padding: its length is the last byte
        end -= datagram[-1]
    if offset > end or end > len(datagram):
        raise MalformedRtp("header or padding longer than the packet")
    return RtpPacket(
        payload_type, bool(second & 0x80), sequence, timestamp, ssrc, bytes(datagram[offset:end])
    )


@dataclass(frozen=True)
class Arrived:
    """A packet with what the receiver knew when it arrived."""

    packet: RtpPacket
    arrival_ms: int  # wall clock, milliseconds


@dataclass
class BufferStats:
    received: int = 0
    lost: int = 0  # gaps given up on, less the late packets that filled them
    late: int = 0
    duplicates: int = 0
    ssrc_changes: int = 0


class JitterBuffer:
    def __init__(self, depth: int = 5) -> None:
        self.depth = depth
        self.stats = BufferStats()
        self._ssrc: int | None = None
        self._waiting: dict[int, Arrived] = {}  # extended sequence number -> packet
        self._next: int | None = None  # the extended sequence number due next
        self._highest = 0
        self._released: OrderedDict[int, None] = OrderedDict()

    def push(self, arrived: Arrived) -> list[Arrived]:
        """Takes a packet; returns the packets now due, in order (possibly none)."""
        packet = arrived.packet
        out: list[Arrived] = []
        if packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                self.stats.ssrc_changes += 1
                out.extend(self.flush())
            self._restart(packet.ssrc, packet.sequence)
        extended = self._extend(packet.sequence)
        if extended is None:  # a jump no reordering explains: the sender restarted its count
            out.extend(self.flush())
            self._restart(packet.ssrc, packet.sequence)
            extended = packet.sequence
        self.stats.received += 1
        if extended in self._released or extended in self._waiting:
            self.stats.duplicates += 1
            return out
        assert self._next is not None
        if extended < self._next:
            # Its gap was given up on already: hand it on all the same (see the module doc).
            self.stats.late += 1
            self.stats.lost = max(0, self.stats.lost - 1)
            self._remember(extended)
            out.append(arrived)
            return out
        self._waiting[extended] = arrived
        self._highest = max(self._highest, extended)
        out.extend(self._release(force=False))
        return out

    def flush(self) -> list[Arrived]:
        """Everything still waiting, in order (a quiet stream, the end of a call)."""
        return self._release(force=True)

    def _restart(self, ssrc: int, sequence: int) -> None:
        self._ssrc = ssrc
        self._waiting.clear()
        self._released.clear()
        self._next = sequence
        self._highest = sequence

    def _extend(self, sequence: int) -> int | None:
        """The extended sequence number nearest the highest one seen, or None past a dropout."""
        base = self._highest & ~0xFFFF
        candidates = (base - 0x10000 + sequence, base + sequence, base + 0x10000 + sequence)
        best = min(candidates, key=lambda c: abs(c - self._highest))
        if abs(best - self._highest) > MAX_DROPOUT:
            return None
        return best

    def _release(self, *, force: bool) -> list[Arrived]:
        out: list[Arrived] = []
        while self._waiting:
            assert self._next is not None
            if self._next in self._waiting:
                out.append(self._waiting.pop(self._next))
                self._remember(self._next)
                self._next += 1
            elif force or len(self._waiting) >= self.depth:
                following = min(self._waiting)
                self.stats.lost += following - self._next
                self._next = following
            else:
                break
        return out

    def _remember(self, extended: int) -> None:
        self._released[extended] = None
        while len(self._released) > REMEMBERED:
            self._released.popitem(last=False)
