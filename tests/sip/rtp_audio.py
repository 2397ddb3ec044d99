"""RTP for the SIP tests: G.711 packets of a known signal, as a pcap SIPp plays or as datagrams
a test sends itself. Built here from the RFCs, not by the product's code."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kallrec.audio.mulaw import mulaw_encode

RATE = 8000
PACKET_SAMPLES = 160  # 20 ms


def tone(seconds: float, freq: float, amplitude: float = 0.4) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def alaw_encode(samples: np.ndarray) -> bytes:
    """G.711 A-law, as the ITU reference code (g711.c) writes it; not the product's code."""
    out = bytearray()
    for sample in samples.astype(np.int32):
        value = int(sample) >> 3
        if value >= 0:
            mask = 0xD5
        else:
            mask = 0x55
            value = -value - 1
        segment = next((i for i, end in enumerate(_ALAW_SEGMENT_ENDS) if value <= end), 8)
        if segment >= 8:
            out.append(0x7F ^ mask)
            continue
        code = segment << 4
        code |= (value >> 1) & 0x0F if segment < 2 else (value >> segment) & 0x0F
        out.append(code ^ mask)
    return bytes(out)


@dataclass(frozen=True)
class Packet:
    at: float  # seconds from the start, when it is sent
    data: bytes


def rtp_header(pt: int, seq: int, ts: int, ssrc: int, marker: bool = False) -> bytes:
    return struct.pack(
        "!BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc
    )


def packets(
    samples: np.ndarray,
    *,
    codec: str = "PCMU",
    ssrc: int = 0x1234ABCD,
    first_seq: int = 1000,
    first_ts: int = 160_000,
    start: float = 0.0,
) -> list[Packet]:
    """20 ms packets of ``samples``, sent in real time from ``start``."""
    pt = 0 if codec == "PCMU" else 8
    out = []
    for i in range(len(samples) // PACKET_SAMPLES):
        chunk = samples[i * PACKET_SAMPLES : (i + 1) * PACKET_SAMPLES]
        payload = mulaw_encode(chunk) if codec == "PCMU" else alaw_encode(chunk)
        header = rtp_header(pt, first_seq + i, first_ts + i * PACKET_SAMPLES, ssrc, i == 0)
        out.append(Packet(start + i * 0.02, header + payload))
    return out


def write_pcap(path: Path, sent: Sequence[Packet], src_port: int = 6000) -> Path:
    """A pcap (Ethernet, IPv4, UDP) of the packets, as SIPp's play_pcap_audio reads one: SIPp
    keeps the UDP payload and the timing, and sends to the port the answer's SDP names."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        base = 1_700_000_000.0
        for p in sent:
            udp = struct.pack("!HHHH", src_port, 4000, 8 + len(p.data), 0) + p.data
            ip = struct.pack(
                "!BBHHHBBH4s4s",
                0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"),
            )  # fmt: skip
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            when = base + p.at
            sec = int(when)
            usec = round((when - sec) * 1_000_000)
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    return path


def send(sent: Iterable[Packet], address: tuple[str, int]) -> None:
    """Sends the packets on their schedule from one socket (one source address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        begin = time.monotonic()
        for p in sorted(sent, key=lambda p: p.at):
            delay = begin + p.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(p.data, address)
