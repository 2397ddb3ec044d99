from __future__ import annotations

import pytest

from kallrec.sip.siprec import BadSiprec, parse_metadata, session_metadata, split_body

METADATA = """<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <session session_id="S1"><sipSessionID>call-a;remote=b</sipSessionID></session>
  <participant participant_id="P1">
    <nameID aor="sip:alice@a.example"><name>Alice</name></nameID>
  </participant>
  <participant participant_id="P2"><nameID aor="sip:bob@b.example"/></participant>
  <stream stream_id="ST1" session_id="S1"><label>10</label></stream>
  <stream stream_id="ST2" session_id="S1"><label>20</label></stream>
  <participantstreamassoc participant_id="P1">
    <send>ST2</send><recv>ST1</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="P2"><send>ST1</send></participantstreamassoc>
</recording>"""

DRAFT = """<recording xmlns="urn:ietf:params:xml:ns:recording">
  <participant id="A"><aor>sip:carol@c.example</aor><send>X</send></participant>
  <participant id="B"><aor>sip:dave@d.example</aor><send>Y</send></participant>
  <stream id="X"><label>1</label></stream>
  <stream id="Y"><label>2</label></stream>
</recording>"""


def multipart(*parts: tuple[str, str]) -> bytes:
    body = "".join(f"--b1\r\nContent-Type: {kind}\r\n\r\n{text}\r\n" for kind, text in parts)
    return (body + "--b1--\r\n").encode()


def test_split_body_finds_the_sdp_and_the_metadata() -> None:
    body = multipart(("application/sdp", "v=0\r\n"), ("application/rs-metadata+xml", METADATA))
    sdp, metadata = split_body('multipart/mixed; boundary="b1"', body)
    assert sdp.startswith("v=0")
    assert metadata is not None and "<recording" in metadata


def test_a_plain_sdp_body_has_no_metadata() -> None:
    assert split_body("application/sdp", b"v=0\r\n") == ("v=0\r\n", None)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"hello"),
        ("multipart/mixed;boundary=b1", multipart(("application/rs-metadata+xml", METADATA))),
        ("multipart/mixed;boundary=b1", b"garbage without parts"),
    ],
)
def test_bodies_without_sdp_are_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(BadSiprec):
        split_body(content_type, body)


def test_participants_map_to_speakers_through_the_labels_they_send() -> None:
    meta = parse_metadata(METADATA)
    assert meta.session_id == "S1"
    assert meta.sip_session_ids == ["call-a;remote=b"]
    assert meta.speaker_of_labels() == {"20": "customer", "10": "agent"}
    assert meta.speaker_of_labels(agent_first=True) == {"20": "agent", "10": "customer"}
    kept = session_metadata(meta, meta.speaker_of_labels())
    assert kept["customer_aor"] == "sip:alice@a.example"
    assert kept["customer_name"] == "Alice"
    assert kept["agent_aor"] == "sip:bob@b.example"
    assert all(len(v) <= 500 for v in kept.values())


def test_the_drafts_metadata_format_is_read_too() -> None:
    meta = parse_metadata(DRAFT)
    assert meta.speaker_of_labels() == {"1": "customer", "2": "agent"}
    assert meta.participants[0].aor == "sip:carol@c.example"


@pytest.mark.parametrize(
    "xml",
    [
        "not xml",
        "<other/>",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
        '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]><recording>&e;&e;&e;&e;</recording>',
    ],
)
def test_bad_or_hostile_metadata_is_refused_or_harmless(xml: str) -> None:
    try:
        meta = parse_metadata(xml)
    except BadSiprec:
        return
    assert meta.participants == []
