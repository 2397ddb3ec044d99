"""Playback links and waveform peaks: the rows behind ``/v1/recordings/{id}/links`` and
``/peaks`` (issue 16).

A link row is written once and then only revoked. What the link URL needs to decide, on every
request, is whether the row is alive: not revoked, not past its ``expires_at``, and made by a key
that is not revoked. ``find_link`` answers all three in one query (a join on the key), so
revoking a key kills its links without touching them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from kallrec.db import schema as t
from kallrec.db.engine import Database
from kallrec.db.models import PlaybackLink


@dataclass(frozen=True)
class LinkGrant:
    """A link as its URL's request sees it: the row and whether the key behind it is revoked."""

    link: PlaybackLink
    key_revoked: bool


class PlaybackRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_link(self, link: PlaybackLink) -> None:
        with self.db.write() as conn:
            conn.execute(insert(t.playback_links).values(**link.__dict__))

    def find_link(self, link_id: str) -> LinkGrant | None:
        pl, keys = t.playback_links, t.api_keys
        query = (
            select(pl, keys.c.revoked_at.label("key_revoked_at"))
            .join(keys, keys.c.id == pl.c.key_id)
            .where(pl.c.id == link_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return LinkGrant(PlaybackLink.from_row(row), row["key_revoked_at"] is not None)

    def revoke_link(
        self, org_id: str, livemode: bool, recording_id: str, link_id: str, now: float
    ) -> PlaybackLink | None:
        """The link, revoked now (or when it was first revoked); None if this key's organization
        and mode have no such link for that recording."""
        pl = t.playback_links
        scope = (
            (pl.c.id == link_id)
            & (pl.c.org_id == org_id)
            & (pl.c.livemode == livemode)
            & (pl.c.recording_id == recording_id)
        )
        with self.db.write() as conn:
            conn.execute(update(pl).where(scope, pl.c.revoked_at.is_(None)).values(revoked_at=now))
            row = conn.execute(select(pl).where(scope)).mappings().first()
        return PlaybackLink.from_row(row) if row is not None else None

    # -- peaks --------------------------------------------------------------------------------

    def get_peaks(self, recording_id: str) -> str | None:
        rp = t.recording_peaks
        with self.db.read() as conn:
            found = conn.execute(select(rp.c.peaks).where(rp.c.recording_id == recording_id))
            value = found.scalar()
        return str(value) if value is not None else None

    def delete_peaks(self, recording_id: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                delete(t.recording_peaks).where(t.recording_peaks.c.recording_id == recording_id)
            )

    def put_peaks(self, recording_id: str, peaks: str, now: float) -> None:
        """Idempotent: a job run twice, or two lazy requests at once, store the same peaks."""
        try:
            with self.db.write() as conn:
                conn.execute(
                    insert(t.recording_peaks).values(
                        recording_id=recording_id, peaks=peaks, created_at=now
                    )
                )
        except IntegrityError:
            pass  # already there: the same recording's peaks, computed from the same audio
