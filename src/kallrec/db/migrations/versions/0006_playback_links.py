"""Playback links and waveform peaks (issue 16).

* ``playback_links``: one row per link a key made for a recording (``POST
  /v1/recordings/{id}/links``). The URL is signed, so it cannot be forged or altered; the row is
  what makes it revocable one by one (``revoked_at``) and tied to the key that made it (a link of
  a revoked key is refused). Its ``disposition`` and ``expires_at`` never change.
* ``recording_peaks``: a recording's waveform as compact JSON, made when it is processed (older
  recordings: on their first ``/peaks`` request).

Revision ID: 0006_playback_links
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_playback_links"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "playback_links",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("org_id", sa.String(), sa.ForeignKey("organizations.id"), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("recording_id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("disposition", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_playback_links_recording", "playback_links", ["recording_id"])
    op.create_index("ix_playback_links_expiry", "playback_links", ["expires_at"])
    op.create_table(
        "recording_peaks",
        sa.Column("recording_id", sa.String(), primary_key=True),
        sa.Column("peaks", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("recording_peaks")
    op.drop_index("ix_playback_links_expiry", table_name="playback_links")
    op.drop_index("ix_playback_links_recording", table_name="playback_links")
    op.drop_table("playback_links")
