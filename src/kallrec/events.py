"""Which events kallrec emits, and what each carries (spec §7).

An ``Emit`` runs inside the repository transaction that makes the change, so the event (and its
pending deliveries) exist exactly when the change does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from kallrec.db.models import Recording, Session
from kallrec.db.repository import insert_event
from kallrec.wire import recording_object, session_object

EVENT_TYPES = (
    "session.created",
    "session.started",
    "session.ended",
    "recording.ready",
    "recording.failed",
    "recording.deleted",
    "recording.expired",
)
# Kallglot's other event names. An endpoint may subscribe to them, so a Kallglot client's
# configuration works unchanged:
# - a carrier's media stream of the session starting and leaving (issue 14; SIP legs: issue 15),
#   with the session (its carrier ids) as data;
PROVIDER_EVENT_TYPES = ("session.provider.connected", "session.provider.disconnected")
# - transcripts and analyses, which kallrec does not make: never sent.
NEVER_SENT_EVENT_TYPES = (
    "transcript.ready",
    "transcript.segment",
    "analysis.complete",
    "analysis.failed",
)
SUBSCRIBABLE_EVENT_TYPES = EVENT_TYPES + PROVIDER_EVENT_TYPES + NEVER_SENT_EVENT_TYPES

EmitRecording = Callable[[Connection, Recording], None]
EmitSession = Callable[[Connection, Session], None]


def recording_event(event_type: str) -> EmitRecording:
    def emit(conn: Connection, rec: Recording) -> None:
        data: dict[str, Any] = recording_object(rec)
        if event_type == "recording.deleted":
            data = {**data, "deleted": True}
        insert_event(conn, rec.org_id, rec.livemode, event_type, data)

    return emit


def session_event(event_type: str) -> EmitSession:
    def emit(conn: Connection, session: Session) -> None:
        # The stream token is a credential for the media socket: it has no place in a webhook.
        data = {**session_object(session, ""), "stream": None}
        insert_event(conn, session.org_id, session.livemode, event_type, data)

    return emit
