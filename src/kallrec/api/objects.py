"""Rows → the JSON objects of the API (spec §3)."""

from __future__ import annotations

from typing import Any

from kallrec.db.models import Recording, Session
from kallrec.timeutil import iso


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
        "created_at": iso(rec.created_at),
        "expires_at": iso(rec.expires_at),
        "livemode": rec.livemode,
    }


def session_object(session: Session, stream_url: str) -> dict[str, Any]:
    duration = None
    if session.started_at is not None and session.ended_at is not None:
        duration = round(session.ended_at - session.started_at, 3)
    stream = None
    if session.status != "ended" and session.stream_token:
        stream = {
            "url": f"{stream_url}/v1/sessions/{session.id}/connect",
            "token": session.stream_token,
            "expires_at": iso(session.stream_token_expires_at),
        }
    return {
        "id": session.id,
        "object": "session",
        "status": session.status,
        "mode": session.mode,
        "source_language": session.source_language,
        "target_language": session.target_language,
        "provider": session.provider,
        "stream": stream,
        "recording": {
            "enabled": session.recording_enabled,
            "channels": session.recording_channels,
        },
        "metadata": session.metadata_dict,
        "created_at": iso(session.created_at),
        "started_at": iso(session.started_at),
        "ended_at": iso(session.ended_at),
        "duration": duration,
        "livemode": session.livemode,
    }
