"""Node affinity: a live session's tracks live on the replica that held its stream.

``sessions.stream_node`` records that replica; the job that turns the tracks into recordings is
queued with ``jobs.node`` set to it, and only that replica claims it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("stream_node", sa.String(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("node", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("node")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("stream_node")
