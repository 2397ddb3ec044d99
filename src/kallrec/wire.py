"""Rows → the JSON objects of the API (spec §3)."""

from __future__ import annotations

from typing import Any

from kallrec.carriers import markup
from kallrec.db.models import Recording, Session
from kallrec.timeutil import iso

# Why a recording failed, as clients see it. Anything else stored (an error after the last
# retry) is shown as ``processing_error``: error text never reaches a client.
FAILURE_REASONS = {
    "no_audio": "no_audio",  # the session ended with recording enabled and no audio
    "audio_missing": "audio_missing",  # its staged audio was lost before it was encoded
    # What kallrec stored before these codes.
    "the recording's audio was never staged": "no_audio",
    "the recording's staged audio is missing": "audio_missing",
}


def failure_reason(rec: Recording) -> str | None:
    if rec.status != "failed":
        return None
    return FAILURE_REASONS.get(rec.failure_reason or "", "processing_error")


def recording_object(rec: Recording) -> dict[str, Any]:
    ready = rec.status == "ready"
    return {
        "id": rec.id,
        "object": "recording",
        "session_id": rec.session_id,
        "channel": rec.channel,
        "status": rec.status,
        "duration": rec.duration,
        "format": "mp3",
        "size": rec.size if ready else None,
        "sample_rate": 8000,
        "bit_depth": 16,
        "download_url": f"/v1/recordings/{rec.id}/audio" if ready else None,
        "failure_reason": failure_reason(rec),
        "created_at": iso(rec.created_at),
        "expires_at": iso(rec.expires_at),
        "livemode": rec.livemode,
    }


def session_object(
    session: Session, stream_url: str, mixed: Recording | None = None, sip_domain: str = ""
) -> dict[str, Any]:
    """``mixed``: the session's mixed recording (``recording_id``) when the caller looked it up,
    for its duration once ready. ``sip_domain``: where kallrec answers SIP (host:port), when it
    does: the session then has a ``sip`` address a PBX can route its call leg to."""
    duration = None
    if session.started_at is not None and session.ended_at is not None:
        duration = round(session.ended_at - session.started_at, 3)
    stream: dict[str, Any] | None = None
    if session.status != "ended" and session.stream_token:
        url = f"{stream_url}/v1/sessions/{session.id}/connect"
        stream = {
            "url": url,
            "token": session.stream_token,
            "expires_at": iso(session.stream_token_expires_at),
        }
        if session.provider in markup.CARRIERS:
            # The markup that points the session's carrier at this stream (issue 14).
            stream["carrier"] = markup.for_carrier(
                session.provider, url, session.stream_token, session.id
            )
    # SIP (docs/sip.md): the address to INVITE while the session is open; the caller adds the
    # stream token (;token=… or an X-Kallrec-Token header) unless it calls from a trunk.
    sip = None
    if sip_domain and session.status != "ended":
        sip = {"uri": f"sip:{session.id}@{sip_domain}"}
    recording_duration = None
    if mixed is not None and mixed.id == session.recording_id and mixed.status == "ready":
        recording_duration = mixed.duration
    return {
        "id": session.id,
        "object": "session",
        "status": session.status,
        "mode": session.mode,
        # Kallglot's: the carrier in use (a string), and the number, when known.
        "provider": session.provider,
        "phone_number": session.phone_number,
        "source_language": session.source_language,
        "target_language": session.target_language,
        "stream": stream,
        "sip": sip,
        "recording": {
            "enabled": session.recording_enabled,
            "channels": session.recording_channels,
            "id": session.recording_id,
            "duration": recording_duration,
        },
        "metadata": session.metadata_dict,
        "routing": session.routing_dict,
        # The carrier's own ids of the call and its media streams (issue 14), as they arrived.
        "carrier": session.carrier_ids_dict or None,
        "ai_agent": session.ai_agent_dict,
        "created_at": iso(session.created_at),
        "started_at": iso(session.started_at),
        "ended_at": iso(session.ended_at),
        "duration": duration,
        "duration_seconds": duration,
        "end_reason": session.end_reason,
        "livemode": session.livemode,
    }
