"""RTP in: one UDP port per recorded stream, its packets ordered, placed and written.

Each stream of a call has its own socket on a port from KALLREC_RTP_PORTS. A datagram is parsed
(rtp.py), put through the stream's jitter buffer, given its place on the session's timeline
(placement.py) and written to the speaker's track (kallrec.live.tracks, the same writer the
WebSocket stream uses). PCMA is turned into μ-law on the way (the track writer's input), PCMU
goes as it is; other payload types (DTMF events, comfort noise) are not audio to record: their
span stays silence.

The first address a stream hears from is the one it records (symmetric RTP, as SBCs send);
datagrams from elsewhere are dropped, so a stranger who learns a port cannot inject audio. A
re-INVITE (``expect_from_anywhere``) lets the next packet choose again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from kallrec.live.messages import StreamError
from kallrec.metrics import SipMetrics
from kallrec.sip.placement import SAMPLES_PER_MS, Placement
from kallrec.sip.rtp import Arrived, JitterBuffer, MalformedRtp, parse

log = logging.getLogger("kallrec.sip.media")

# A stream quiet this long hands on what its jitter buffer holds.
FLUSH_AFTER_SECONDS = 0.2
# Chunks of held time written when a stream resumes after a long hold (see CallAudio.write).
FILL_STEP_MS = 10_000


def now_ms() -> int:
    return int(time.time() * 1000)


class CallAudio:
    """Where one call's streams write: the session's tracks, under the track writer's rules."""

    def __init__(self, tracks: Any, max_jump_ms: int, metrics: SipMetrics) -> None:
        self.tracks = tracks
        self.max_jump_ms = max_jump_ms
        self.metrics = metrics
        self.end_ms = 0  # the furthest audio this call has written, either speaker
        self.wrote = False

    def write(self, speaker: str, at_ms: int, mulaw: bytes) -> None:
        # A call on hold for longer than the track writer's jump limit resumes far past the end
        # of its audio: the hold is written as muted time first, in steps the writer accepts, so
        # it stays in the recording as silence of its real length.
        while self.end_ms and at_ms > self.end_ms + self.max_jump_ms - FILL_STEP_MS:
            step = bytes(FILL_STEP_MS * SAMPLES_PER_MS)
            self._write(speaker, self.end_ms, step, muted=True)
        self._write(speaker, at_ms, mulaw, muted=False)

    def _write(self, speaker: str, at_ms: int, mulaw: bytes, *, muted: bool) -> None:
        try:
            self.tracks.write(speaker, at_ms, mulaw, max_jump_ms=self.max_jump_ms, muted=muted)
        except StreamError:
            self.metrics.rtp_dropped.labels("range").inc()
            return
        self.end_ms = max(self.end_ms, at_ms + len(mulaw) // SAMPLES_PER_MS)
        self.wrote = True


@dataclass
class _Jitter:
    """RFC 3550 §6.4.1 interarrival jitter, in timestamp units (1/8 ms)."""

    value: float = 0.0
    last_transit: float | None = None

    def observe(self, arrival_ms: int, timestamp: int) -> None:
        transit = arrival_ms * SAMPLES_PER_MS - timestamp
        if self.last_transit is not None:
            d = abs(transit - self.last_transit)
            if d < 8000 * 10:  # a new SSRC or a timestamp reset is not jitter
                self.value += (d - self.value) / 16
        self.last_transit = transit


class RtpStream(asyncio.DatagramProtocol):
    def __init__(
        self,
        speaker: str,
        payload_types: dict[int, str],
        audio: CallAudio,
        metrics: SipMetrics,
        recording: bool,
    ) -> None:
        self.speaker = speaker
        self.payload_types = payload_types
        self.audio = audio
        self.metrics = metrics
        self.recording = recording
        self.buffer = JitterBuffer()
        self.placement = Placement()
        self.jitter = _Jitter()
        self.source: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self._flush: asyncio.TimerHandle | None = None
        self._inbox: list[tuple[int, bytes, tuple[str, int]]] = []
        self._reported_lost = 0
        self._reported_late = 0
        from kallrec.audio.mulaw import alaw_decode, mulaw_encode  # NumPy: with the first call

        self._alaw_to_mulaw: Callable[[bytes], bytes] = lambda b: mulaw_encode(alaw_decode(b))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (CPython < 3.12 and uvloop do not declare their datagram transports as such.)
        self.transport = cast(asyncio.DatagramTransport, transport)

    def expect_from_anywhere(self, payload_types: dict[int, str]) -> None:
        """A re-INVITE: the offer's numbering, and the next packet's source, count from now."""
        self.payload_types = payload_types
        self.source = None
        self.placement.resync()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        # Stamped now, processed in a moment: the packets that arrived together (both streams of
        # a SIPREC call) all get their arrival time before any of them is written (the first
        # write of a session syncs its timeline to disk, which would make the others look late).
        self._inbox.append((now_ms(), data, (str(addr[0]), int(addr[1]))))
        if len(self._inbox) == 1:
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_now()
        if self._flush is not None:
            self._flush.cancel()
        self._flush = asyncio.get_running_loop().call_later(FLUSH_AFTER_SECONDS, self.flush)

    def _receive(self, arrival: int, data: bytes, source: tuple[str, int]) -> None:
        if self.source is None:
            self.source = source
        elif source != self.source:
            self.metrics.rtp_dropped.labels("source").inc()
            return
        try:
            packet = parse(data)
        except MalformedRtp:
            self.metrics.rtp_dropped.labels("malformed").inc()
            return
        self.metrics.rtp_packets.inc()
        self.jitter.observe(arrival, packet.timestamp)
        duplicates = self.buffer.stats.duplicates
        for due in self.buffer.push(Arrived(packet, arrival)):
            self._write(due)
        if self.buffer.stats.duplicates != duplicates:
            self.metrics.rtp_dropped.labels("duplicate").inc()
        self._count_losses()

    def _drain_now(self) -> None:
        inbox, self._inbox = self._inbox, []
        for arrival, data, source in inbox:
            self._receive(arrival, data, source)

    def flush(self) -> None:
        for due in self.buffer.flush():
            self._write(due)
        self._count_losses()

    def _write(self, arrived: Arrived) -> None:
        packet = arrived.packet
        codec = self.payload_types.get(packet.payload_type)
        if codec is None or not packet.payload:
            self.metrics.rtp_dropped.labels("codec").inc()
            return
        at_ms = self.placement.place(
            packet.ssrc, packet.timestamp, arrived.arrival_ms, len(packet.payload)
        )
        if not self.recording:
            return
        mulaw = packet.payload if codec == "PCMU" else self._alaw_to_mulaw(packet.payload)
        self.audio.write(self.speaker, at_ms, mulaw)

    def _count_losses(self) -> None:
        stats = self.buffer.stats
        if stats.lost > self._reported_lost:
            self.metrics.rtp_lost.inc(stats.lost - self._reported_lost)
        self._reported_lost = stats.lost
        if stats.late > self._reported_late:
            self.metrics.rtp_late.inc(stats.late - self._reported_late)
            self._reported_late = stats.late

    def close(self) -> None:
        """Writes what is still buffered and frees the port."""
        if self._flush is not None:
            self._flush.cancel()
        self._drain_now()
        self.flush()
        if self.buffer.stats.received:
            self.metrics.jitter.observe(self.jitter.value / SAMPLES_PER_MS / 1000)
        if self.transport is not None:
            self.transport.close()


class PortPool:
    """Even ports of KALLREC_RTP_PORTS (RTP's convention; RTCP would take the odd one above)."""

    def __init__(self, first: int, last: int, host: str) -> None:
        self.ports = list(range(first + first % 2, last, 2))
        self.host = host

    async def open(self, make: Callable[[], RtpStream]) -> RtpStream:
        loop = asyncio.get_running_loop()
        start = random.randrange(len(self.ports))  # spreads calls over the range
        for i in range(len(self.ports)):
            port = self.ports[(start + i) % len(self.ports)]
            with contextlib.suppress(OSError):  # taken (by another call or another program)
                _, stream = await loop.create_datagram_endpoint(make, local_addr=(self.host, port))
                return stream
        raise OSError("no free RTP port in KALLREC_RTP_PORTS")
