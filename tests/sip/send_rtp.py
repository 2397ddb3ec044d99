"""``python -m tests.sip.send_rtp HOST SECONDS PORT:FREQ[:CODEC] ...``: sends a tone to each
port at once, in real time, one source socket per port. SIPp runs it (``exec``) once it has the
ports of kallrec's answer, for scenarios with more streams than its pcap player plays."""

from __future__ import annotations

import socket
import sys
import time

from tests.sip.rtp_audio import packets, tone


def main(argv: list[str]) -> None:
    host, seconds = argv[0], float(argv[1])
    streams = []
    for n, spec in enumerate(argv[2:]):
        port, freq, *codec = spec.split(":")
        sent = packets(tone(seconds, float(freq)), codec=(codec or ["PCMU"])[0], ssrc=0x5000 + n)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        streams.append((sock, (host, int(port)), sent))
    begin = time.monotonic()
    for i in range(max(len(s[2]) for s in streams)):
        delay = begin + i * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for sock, address, sent in streams:
            if i < len(sent):
                sock.sendto(sent[i].data, address)


if __name__ == "__main__":
    main(sys.argv[1:])
