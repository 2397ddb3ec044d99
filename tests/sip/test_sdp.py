from __future__ import annotations

from aiosipua.sdp import parse_sdp, serialize_sdp

from kallrec.sip.sdp import answer, receivable_streams


def offer(*media: str, connection: str = "c=IN IP4 10.0.0.5\r\n") -> str:
    return "v=0\r\no=x 1 1 IN IP4 10.0.0.5\r\ns=-\r\n" + connection + "t=0 0\r\n" + "".join(media)


PCMU_PCMA = "m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"


def test_the_offerers_preferred_decodable_codec_is_chosen() -> None:
    sdp = parse_sdp(offer(PCMU_PCMA))
    streams = receivable_streams(sdp)
    assert [(s.index, s.payload_types, s.remote) for s in streams] == [
        (0, {8: "PCMA", 0: "PCMU"}, ("10.0.0.5", 4000))
    ]
    text = serialize_sdp(answer(sdp, "192.0.2.1", {0: 20000}))
    assert "m=audio 20000 RTP/AVP 8\r\n" in text
    assert "a=rtpmap:8 PCMA/8000" in text
    assert "a=recvonly" in text  # kallrec records, it never sends
    assert "c=IN IP4 192.0.2.1" in text


def test_dynamic_payload_types_are_read_by_name() -> None:
    sdp = parse_sdp(
        offer("m=audio 4000 RTP/AVP 96 97\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:97 PCMU/8000\r\n")
    )
    assert receivable_streams(sdp)[0].payload_types == {97: "PCMU"}


def test_what_kallrec_cannot_receive_is_answered_with_port_zero_in_its_place() -> None:
    sdp = parse_sdp(
        offer(
            "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n",
            "m=audio 5002 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n",
            "m=audio 0 RTP/AVP 0\r\n",
            "m=audio 5004 RTP/SAVP 0\r\n",
            "m=audio 5006 RTP/AVP 0\r\na=label:7\r\na=sendonly\r\n",
        )
    )
    streams = receivable_streams(sdp)
    assert [(s.index, s.label, s.direction) for s in streams] == [(4, "7", "sendonly")]
    text = serialize_sdp(answer(sdp, "192.0.2.1", {4: 20002}))
    lines = [line for line in text.split("\r\n") if line.startswith("m=")]
    assert lines == [
        "m=video 0 RTP/AVP 96",
        "m=audio 0 RTP/AVP 96",
        "m=audio 0 RTP/AVP 0",
        "m=audio 0 RTP/SAVP 0",
        "m=audio 20002 RTP/AVP 0",
    ]
    assert "a=label:7" in text  # SIPREC: the client pairs streams by label


def test_hold_offers_are_answered_inactive_or_recvonly() -> None:
    on_hold = parse_sdp(offer("m=audio 4000 RTP/AVP 0\r\na=inactive\r\n"))
    assert "a=inactive" in serialize_sdp(answer(on_hold, "192.0.2.1", {0: 20000}))
    assert not receivable_streams(on_hold)[0].sending


def test_no_decodable_audio_means_no_streams() -> None:
    assert receivable_streams(parse_sdp(offer("m=audio 4000 RTP/AVP 18\r\n"))) == []
    assert receivable_streams(parse_sdp("this is not SDP")) == []
