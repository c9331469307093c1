"""Database URLs as users see them: never with the password."""

from __future__ import annotations


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; safe for banners, logs and errors."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def describe_location(url: str) -> str:
    """Short 'where' of a database: ``host:port`` for servers, the file for SQLite."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 3306}"
