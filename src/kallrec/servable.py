"""Whether a recording's audio can be sent now, and the answer when it cannot (spec §1.2).

One rule for every way audio leaves the service (/audio, /download and the signed links), so they
cannot disagree about a recording that is processing, failed, expired or gone.
"""

from __future__ import annotations

from kallrec import timeutil
from kallrec.db.models import Recording
from kallrec.errors import Conflict, Gone, missing

# Seconds a client is told to wait before asking again for a recording still processing.
PROCESSING_RETRY_AFTER = 2


def servable(rec: Recording | None, recording_id: str) -> Recording:
    """The recording if its audio can be sent now, else the error spec §1.2 prescribes."""
    if rec is None:
        raise missing("recording", recording_id, "recording_id")
    if rec.status == "processing":
        raise Conflict(
            f"Recording '{rec.id}' is still processing; try again shortly.",
            code="recording_not_ready",
            param="recording_id",
            retry_after=PROCESSING_RETRY_AFTER,
        )
    if rec.status == "failed":
        raise Conflict(
            f"Recording '{rec.id}' failed to process and has no audio.",
            code="recording_failed",
            param="recording_id",
        )
    if rec.status == "expired" or rec.expires_at <= timeutil.now():
        raise Gone(
            f"Recording '{rec.id}' passed its retention period and its audio was purged.",
            code="recording_expired",
            param="recording_id",
        )
    assert rec.storage_key is not None and rec.size is not None and rec.content_hash
    return rec
