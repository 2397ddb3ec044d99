"""Live calls on any replica (issue 17).

* ``live_segments``: the index of a live call's audio as it is flushed to storage, a segment
  (both speakers) every ~second from whichever replica holds the stream, at a byte range of a
  packed object (one object per process per flush round, whatever its number of calls).
  Applied in id order when finalizing: the later segment wins where two overlap.
* ``live_objects``: those packed objects; one is removed (through the file reaper) when the
  last of its segments is forgotten.
* ``live_writers``: which process is still holding (and flushing) a session's audio, with its
  last heartbeat; the finalize job waits for them, or for their heartbeat to go stale.
* ``first_start_claims``: one row per one-time installation task (the demo organization), so
  several replicas starting on one new database do it once.

``sessions.stream_node`` and ``jobs.node`` (0003) are no longer written or read; they stay for
rolling upgrades (a release must not drop what an older replica still writes).

Revision ID: 0008_live_segments
Revises: 0006_playback_links
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_live_segments"
down_revision: str | None = "0006_playback_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_segments",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("writer", sa.String(), nullable=False),
        sa.Column("storage_key", sa.String(), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("start_sample", sa.BigInteger(), nullable=False),
        sa.Column("end_sample", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_live_segments_session", "live_segments", ["session_id", "id"])
    op.create_index("ix_live_segments_object", "live_segments", ["storage_key"])
    op.create_table(
        "live_objects",
        sa.Column("storage_key", sa.String(), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "live_writers",
        sa.Column("session_id", sa.String(), primary_key=True),
        sa.Column("writer", sa.String(), primary_key=True),
        sa.Column("seen_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "first_start_claims",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("claimed_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("first_start_claims")
    op.drop_table("live_writers")
    op.drop_table("live_objects")
    op.drop_index("ix_live_segments_object", table_name="live_segments")
    op.drop_index("ix_live_segments_session", table_name="live_segments")
    op.drop_table("live_segments")
