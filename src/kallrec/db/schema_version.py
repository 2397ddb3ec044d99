"""The newest migration, known without Alembic.

Every process checks the database's schema revision at start. When it is already the newest (the
usual case: ``kallrec serve`` migrates once before its workers start), the check is one query and
Alembic is never imported, which keeps ~10 MiB (Alembic, Mako) out of every server worker.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from kallrec.db.engine import Database

# The revision of the newest file in migrations/versions; tests/db/test_migrations.py checks it.
HEAD = "0008_live_segments"


def is_current(db: Database) -> bool:
    """Whether the database records exactly HEAD (False without a version table, too)."""
    try:
        with db.read() as conn:
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return False
    return [row[0] for row in rows] == [HEAD]


def migrate(db: Database) -> None:
    """Brings the schema to the newest migration; safe to call from many processes at once."""
    if is_current(db):
        return
    # Imported only when there is something to migrate: Alembic stays out of server workers.
    # (kallrec.db.migrations does not import this module: no cycle.)
    from kallrec.db.migrations import upgrade

    upgrade(db)
