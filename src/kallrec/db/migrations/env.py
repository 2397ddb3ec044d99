"""Alembic's entry point. ``kallrec.db.migrations.upgrade`` hands it a connection already inside
the migrating transaction; the ``alembic`` command line (writing revisions) gets one from the
usual KALLREC_* settings instead."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from kallrec.db.migrations import TARGET_METADATA


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=TARGET_METADATA,
        # SQLite alters most things by copying the table: let autogenerate write it that way.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    # Inside the caller's transaction this begins nothing and commits nothing.
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        return
    from kallrec.config import Settings
    from kallrec.db.engine import Database

    db = Database(Settings.from_env().resolved_database_url)
    try:
        with db.write() as conn:
            run(conn)
    finally:
        db.close()


main()
