"""The SDP answer (RFC 3264) kallrec gives an offer: receive PCMU or PCMA on each audio stream.

kallrec records, it never sends audio: every accepted stream is answered ``recvonly`` (or
``inactive`` when the offerer will not send). Each offered audio stream with a codec kallrec
decodes gets its own RTP port; anything else (video, an audio stream with only codecs kallrec
cannot decode, a stream the offerer disabled with port 0) is answered with port 0, as RFC 3264
§6 says, so the m-lines of offer and answer stay paired. SIPREC's ``a=label`` is echoed, which is
how the recording client matches our answer to its streams (RFC 7866 §8.1.1).

Parsing and serialising are aiosipua's (its dataclasses); only the choices are made here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiosipua.sdp import (
    Codec,
    ConnectionData,
    MediaDescription,
    Origin,
    SdpMessage,
    TimingField,
)

# What the RTP receiver decodes (static payload types of RFC 3551), by encoding name.
CODECS = {"PCMU": 0, "PCMA": 8}
_ANSWER_DIRECTION = {
    "sendrecv": "recvonly",
    "sendonly": "recvonly",
    "recvonly": "inactive",
    "inactive": "inactive",
}


@dataclass(frozen=True)
class OfferedStream:
    """One audio m-line kallrec will receive."""

    index: int  # position among the offer's m-lines
    payload_types: dict[int, str]  # payload type -> "PCMU" | "PCMA", as the offer numbers them
    label: str | None  # SIPREC's a=label
    direction: str
    remote: tuple[str, int] | None  # where the offerer's RTP comes from (not used to send)

    @property
    def sending(self) -> bool:
        """Whether the offerer will send on this stream (it is not on hold)."""
        return self.direction in ("sendrecv", "sendonly")


def receivable_streams(offer: SdpMessage) -> list[OfferedStream]:
    """The offer's audio streams that carry a codec kallrec decodes."""
    streams = []
    for index, media in enumerate(offer.media):
        if media.media != "audio" or media.port == 0 or not media.proto.startswith("RTP/AVP"):
            continue
        types = _decodable(media)
        if not types:
            continue
        labels = media.attributes.get("label") or [""]
        connection = media.connection or offer.connection
        remote = (connection.address, media.port) if connection else None
        streams.append(OfferedStream(index, types, labels[0] or None, media.direction, remote))
    return streams


def _decodable(media: MediaDescription) -> dict[int, str]:
    found: dict[int, str] = {}
    for codec in media.codecs:
        name = codec.encoding_name.upper()
        if not name and codec.payload_type in CODECS.values():
            name = "PCMU" if codec.payload_type == 0 else "PCMA"
        if name in CODECS and (codec.clock_rate or 8000) == 8000:
            found[codec.payload_type] = name
    return found


def answer(
    offer: SdpMessage, address: str, ports: dict[int, int], *, session_id: str | None = None
) -> SdpMessage:
    """The answer: ``ports`` maps the index of each accepted m-line to kallrec's RTP port."""
    version = session_id or str(int(time.time()))
    addr_type = "IP6" if ":" in address else "IP4"
    media = []
    for index, offered in enumerate(offer.media):
        port = ports.get(index)
        if port is None:
            media.append(_rejected(offered))
            continue
        types = _decodable(offered)
        # The offerer's preference among what kallrec decodes (RFC 3264 §6.1).
        chosen = next(c for c in offered.codecs if c.payload_type in types)
        name = types[chosen.payload_type]
        attributes: dict[str, list[str]] = {
            "rtpmap": [f"{chosen.payload_type} {name}/8000"],
            _ANSWER_DIRECTION.get(offered.direction, "recvonly"): [],
        }
        if "label" in offered.attributes:
            attributes["label"] = offered.attributes["label"][:1]
        if "ptime" in offered.attributes:
            attributes["ptime"] = offered.attributes["ptime"][:1]
        media.append(
            MediaDescription(
                media="audio",
                port=port,
                proto=offered.proto,
                formats=[str(chosen.payload_type)],
                attributes=attributes,
                codecs=[Codec(chosen.payload_type, name, 8000, 1)],
            )
        )
    return SdpMessage(
        origin=Origin("kallrec", version, version, "IN", addr_type, address),
        session_name="kallrec",
        connection=ConnectionData("IN", addr_type, address),
        timing=TimingField(0, 0),
        media=media,
    )


def _rejected(offered: MediaDescription) -> MediaDescription:
    return MediaDescription(
        media=offered.media, port=0, proto=offered.proto, formats=offered.formats[:1] or ["0"]
    )
