from __future__ import annotations

import struct

import pytest

from kallrec.sip.rtp import Arrived, JitterBuffer, MalformedRtp, RtpPacket, parse


def datagram(
    seq: int, ts: int = 0, ssrc: int = 1, pt: int = 0, payload: bytes = b"\xff" * 160
) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts, ssrc) + payload


def arrived(seq: int, ssrc: int = 1) -> Arrived:
    return Arrived(RtpPacket(0, False, seq & 0xFFFF, seq * 160, ssrc, b"x"), 0)


def sequences(out: list[Arrived]) -> list[int]:
    return [a.packet.sequence for a in out]


def test_parse_reads_the_header_and_skips_csrcs_extension_and_padding() -> None:
    header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80 | 8, 7, 1234, 99)
    csrcs = b"\x00" * 8
    extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
    packet = parse(header + csrcs + extension + b"abc" + b"\x00\x00\x03")
    assert (packet.payload_type, packet.marker, packet.sequence) == (8, True, 7)
    assert (packet.timestamp, packet.ssrc, packet.payload) == (1234, 99, b"abc")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80" * 11,
        struct.pack("!BBHII", 0x40, 0, 1, 1, 1),  # version 1
        struct.pack("!BBHII", 0x80, 200, 1, 1, 1),  # RTCP sender report on the same port
        struct.pack("!BBHII", 0x8F, 0, 1, 1, 1),  # 15 CSRCs announced, none there
        struct.pack("!BBHII", 0x90, 0, 1, 1, 1) + b"\x00\x00",  # truncated extension
        struct.pack("!BBHII", 0xA0, 0, 1, 1, 1) + b"\xff",  # padding longer than the packet
    ],
)
def test_parse_refuses_what_is_not_rtp(data: bytes) -> None:
    with pytest.raises(MalformedRtp):
        parse(data)


def test_in_order_packets_pass_straight_through() -> None:
    buffer = JitterBuffer()
    out = [a for seq in range(10, 15) for a in buffer.push(arrived(seq))]
    assert sequences(out) == [10, 11, 12, 13, 14]
    assert buffer.stats.lost == 0


def test_reordered_packets_come_out_in_order() -> None:
    buffer = JitterBuffer()
    out = []
    for seq in (10, 12, 11, 14, 13, 15):
        out += buffer.push(arrived(seq))
    assert sequences(out) == [10, 11, 12, 13, 14, 15]
    assert buffer.stats.lost == 0


def test_a_gap_is_given_up_after_depth_packets_and_counted_lost() -> None:
    buffer = JitterBuffer(depth=3)
    out = buffer.push(arrived(1))
    for seq in (3, 4):
        out += buffer.push(arrived(seq))
    assert sequences(out) == [1]  # still waiting for 2
    out += buffer.push(arrived(5))
    assert sequences(out) == [1, 3, 4, 5]
    assert buffer.stats.lost == 1


def test_a_late_packet_is_still_handed_on_and_uncounted_as_lost() -> None:
    buffer = JitterBuffer(depth=2)
    for seq in (1, 3, 4):
        buffer.push(arrived(seq))
    assert buffer.stats.lost == 1
    assert sequences(buffer.push(arrived(2))) == [2]
    assert (buffer.stats.lost, buffer.stats.late) == (0, 1)


def test_duplicates_are_dropped() -> None:
    buffer = JitterBuffer()
    out = []
    for seq in (1, 2, 2, 3, 1):
        out += buffer.push(arrived(seq))
    assert sequences(out) == [1, 2, 3]
    assert buffer.stats.duplicates == 2


def test_sequence_numbers_wrap_around() -> None:
    buffer = JitterBuffer()
    out = []
    for seq in (65534, 0, 65535, 1):
        out += buffer.push(arrived(seq))
    assert sequences(out) == [65534, 65535, 0, 1]


def test_a_new_ssrc_flushes_the_old_stream_and_starts_over() -> None:
    buffer = JitterBuffer(depth=5)
    out = buffer.push(arrived(1)) + buffer.push(arrived(3))
    out += buffer.push(arrived(500, ssrc=2))
    assert sequences(out) == [1, 3, 500]
    assert buffer.stats.ssrc_changes == 1


def test_a_jump_no_reordering_explains_restarts_the_count() -> None:
    buffer = JitterBuffer()
    out = buffer.push(arrived(1)) + buffer.push(arrived(40000))
    assert sequences(out) == [1, 40000]


def test_flush_hands_on_everything_waiting() -> None:
    buffer = JitterBuffer(depth=10)
    buffer.push(arrived(1))
    buffer.push(arrived(4))
    buffer.push(arrived(3))
    assert sequences(buffer.flush()) == [3, 4]
    assert buffer.stats.lost == 1


def test_parse_then_buffer_a_real_datagram() -> None:
    packet = parse(datagram(9, ts=320, ssrc=5))
    assert sequences(JitterBuffer().push(Arrived(packet, 0))) == [9]
