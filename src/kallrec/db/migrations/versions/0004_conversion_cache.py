"""The conversion cache's bookkeeping: kept conversions under a byte quota, and their readers.

``conversion_cache`` holds one row per converted download kept in storage (size, last use: the
LRU order); ``conversion_pins`` the readers and builders a kept file must not be evicted under.
See kallrec.db.conversion_repository.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "conversion_cache",
        sa.Column("storage_key", sa.String(), nullable=False),
        sa.Column("recording_id", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("storage_key"),
    )
    op.create_index("ix_conversion_cache_lru", "conversion_cache", ["last_used_at"])
    op.create_table(
        "conversion_pins",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("storage_key", sa.String(), nullable=False),
        sa.Column("until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conversion_pins_key", "conversion_pins", ["storage_key", "until"])


def downgrade() -> None:
    op.drop_index("ix_conversion_pins_key", table_name="conversion_pins")
    op.drop_table("conversion_pins")
    op.drop_index("ix_conversion_cache_lru", table_name="conversion_cache")
    op.drop_table("conversion_cache")
