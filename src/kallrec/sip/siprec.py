"""SIPREC (RFC 7865 metadata, RFC 7866 protocol): the parts of a recording session's INVITE.

An SRC (the SBC or PBX forking the call) sends a ``multipart/mixed`` body: the SDP, with one
``a=label`` per forked stream, and ``application/rs-metadata+xml``, which says who the
participants are and which labelled stream each of them sends. kallrec maps each stream to a
speaker from that: by default the participant who placed the original call (the first one the
metadata lists) is the ``customer`` and the other the ``agent`` (a contact centre's inbound
call); a trunk can say the opposite (``agent=caller``). Without usable metadata the first
stream is the customer's and the second the agent's.

Both the RFC's metadata format and the older one of its drafts (``<participant id=…>`` with
``<aor>`` and ``<send>`` inside) are read. The XML parser is the standard library's expat, which
resolves no external entities and refuses entity expansion bombs (expat ≥ 2.4.1).
"""

from __future__ import annotations

import email.parser
import email.policy
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

METADATA_TYPE = "application/rs-metadata+xml"
SDP_TYPE = "application/sdp"


class BadSiprec(ValueError):
    """A recording INVITE whose body kallrec cannot read."""


@dataclass
class Participant:
    id: str
    aor: str = ""
    name: str = ""
    sends: list[str] = field(default_factory=list)  # stream ids


@dataclass
class Metadata:
    session_id: str = ""  # the recording session's id in the metadata
    sip_session_ids: list[str] = field(default_factory=list)  # the original call's
    participants: list[Participant] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # stream id -> SDP label

    def speaker_of_labels(self, agent_first: bool = False) -> dict[str, str]:
        """SDP label -> "customer" / "agent", for the labels the metadata ties to a sender."""
        out: dict[str, str] = {}
        order = ("agent", "customer") if agent_first else ("customer", "agent")
        for speaker, participant in zip(order, self.participants, strict=False):
            for stream_id in participant.sends:
                label = self.labels.get(stream_id)
                if label is not None:
                    out.setdefault(label, speaker)
        return out


def split_body(content_type: str, body: bytes) -> tuple[str, str | None]:
    """The SDP and the rs-metadata (None when absent) of an INVITE body."""
    main = content_type.split(";", 1)[0].strip().lower()
    if main == SDP_TYPE:
        return body.decode("utf-8", errors="replace"), None
    if not main.startswith("multipart/"):
        raise BadSiprec(f"unsupported body type {main or '(none)'}")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + body)
    sdp: str | None = None
    metadata: str | None = None
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = payload.decode("utf-8", errors="replace")
        if kind == SDP_TYPE and sdp is None:
            sdp = text
        elif kind == METADATA_TYPE and metadata is None:
            metadata = text
    if sdp is None:
        raise BadSiprec("the multipart body has no application/sdp part")
    return sdp, metadata


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ET.Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def parse_metadata(xml: str) -> Metadata:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise BadSiprec(f"rs-metadata is not XML: {exc}") from None
    if _local(root.tag) != "recording":
        raise BadSiprec("rs-metadata has no <recording> root")
    meta = Metadata()
    for session in _children(root, "session"):
        meta.session_id = meta.session_id or session.get("session_id") or session.get("id") or ""
        meta.sip_session_ids += [_text(s) for s in _children(session, "sipSessionID") if _text(s)]
    participants: dict[str, Participant] = {}
    for element in _children(root, "participant"):
        pid = element.get("participant_id") or element.get("id") or ""
        participant = Participant(pid)
        for name_id in _children(element, "nameID"):
            participant.aor = participant.aor or name_id.get("aor", "")
            participant.name = participant.name or _text(next(iter(name_id), None))
        for aor in _children(element, "aor"):  # the draft's form
            participant.aor = participant.aor or _text(aor)
        for name in _children(element, "name"):
            participant.name = participant.name or _text(name)
        participant.sends += [_text(s) for s in _children(element, "send") if _text(s)]
        participants[pid] = participant
        meta.participants.append(participant)
    for assoc in _children(root, "participantstreamassoc"):
        owner = participants.get(assoc.get("participant_id") or "")
        if owner is not None:
            owner.sends += [_text(s) for s in _children(assoc, "send") if _text(s)]
    for stream in _children(root, "stream"):
        sid = stream.get("stream_id") or stream.get("id") or ""
        label = _text(next(iter(_children(stream, "label")), None))
        if sid and label:
            meta.labels[sid] = label
    return meta


def session_metadata(meta: Metadata, speakers: dict[str, str]) -> dict[str, str]:
    """What the session keeps of the metadata (string values, ≤ 500 characters each)."""
    out = {"siprec_session_id": meta.session_id}
    if meta.sip_session_ids:
        out["siprec_sip_session_ids"] = ",".join(meta.sip_session_ids)
    for participant in meta.participants:
        labels = [meta.labels.get(stream_id, "") for stream_id in participant.sends]
        speaker = next((speakers[label] for label in labels if label in speakers), "")
        prefix = speaker or f"participant_{participant.id}"
        if participant.aor:
            out[f"{prefix}_aor"] = participant.aor
        if participant.name:
            out[f"{prefix}_name"] = participant.name
    return {k[:40]: v[:500] for k, v in out.items() if v}
