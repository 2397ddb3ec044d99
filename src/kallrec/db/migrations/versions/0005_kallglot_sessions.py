"""Sessions as Kallglot clients create and end them (issue 12).

* ``organizations.record_by_default``: sessions created without ``recording.enabled`` now record
  only when their organization says so (Kallglot's default is not to record). Organizations that
  exist when this runs are set to record by default, as every session did before: an upgrade
  must not silently stop recording anyone's calls. New organizations start without.
* ``sessions``: routing (``phone_number``, ``direction``, ``routing``, ``carrier_ids``),
  ``ai_agent``, ``end_reason`` and ``recording_id`` (the mixed recording), which is filled in
  for sessions that already have one.
* ``recordings.source``: ``live`` recordings are made (``processing``) in the transaction that
  ends their session and filled from its tracks later; ``import`` ones come from a file.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSION_COLUMNS = (
    "phone_number",
    "direction",
    "routing",
    "carrier_ids",
    "ai_agent",
    "end_reason",
    "recording_id",
)
TEXT_COLUMNS = ("routing", "carrier_ids", "ai_agent")


def upgrade() -> None:
    # A plain ALTER TABLE ADD COLUMN (SQLite allows it with a default): a batch operation would
    # copy the table, which SQLite refuses for one that others reference.
    op.add_column(
        "organizations",
        sa.Column("record_by_default", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(sa.text("UPDATE organizations SET record_by_default = :yes").bindparams(yes=True))
    with op.batch_alter_table("sessions") as batch:
        for name in SESSION_COLUMNS:
            kind = sa.Text() if name in TEXT_COLUMNS else sa.String()
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("source", sa.String(), nullable=True))
    # Sessions that already have a mixed recording point at it (the oldest, when several).
    op.execute(
        sa.text(
            "UPDATE sessions SET recording_id = (SELECT MIN(r.id) FROM recordings r "
            "WHERE r.session_id = sessions.id AND r.channel = 'mixed' AND r.deleted_at IS NULL)"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("sessions") as batch:
        for name in reversed(SESSION_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("record_by_default")
