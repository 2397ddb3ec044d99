"""Database URLs as kallrec accepts them: pure, so that Settings can validate one without
loading the engine, and config and db.engine need not import each other."""

from __future__ import annotations


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver kallrec ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    if url.startswith(("sqlite:///", "postgresql+psycopg://")):
        return url
    # SQLAlchemy only to hide a password in the message: reading settings stays light.
    from sqlalchemy.engine import make_url

    shown = make_url(url).render_as_string(hide_password=True) if "://" in url else repr(url)
    raise ValueError(
        f"Unsupported database URL {shown}: use sqlite:///path or postgresql://user@host/db."
    )
