"""Database URLs as users see them: parsed cheaply, shown without the password.

The banner and the configuration check need only the driver, the host and a masked copy of
the URL; importing SQLAlchemy for that would cost a quarter of a second of prompt startup.
The pattern is SQLAlchemy's own (``sqlalchemy.engine.url._parse_url``), so both read a URL
the same way; SQLAlchemy still parses it properly when the database is opened.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_URL = re.compile(
    r"""
    ^(?P<drivername>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?$
    """,
    re.X,
)


@dataclass(frozen=True)
class DatabaseURL:
    drivername: str
    host: str | None
    port: int | None
    database: str | None
    has_password: bool


def parse_url(url: str) -> DatabaseURL:
    """The parts of ``url`` AWE checks; ``ValueError`` when it is not a database URL."""
    match = _URL.match(url.strip())
    if match is None:
        raise ValueError(f"not a database URL: {mask_url(url)}")
    port = match["port"]
    if port and not port.isdigit():
        raise ValueError(f"port {port!r} is not a number")
    return DatabaseURL(
        drivername=match["drivername"],
        host=match["ipv6host"] or match["ipv4host"],
        port=int(port) if port else None,
        database=match["database"] or None,
        has_password=match["password"] is not None,
    )


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; safe for banners, logs and errors."""
    return re.sub(r"^([\w+]+://[^:/@]*):[^@]*@", r"\1:***@", url.strip())


def describe_location(url: str) -> str:
    """Short 'where' of a database: ``host:port`` for servers, the file for SQLite."""
    parsed = parse_url(url)
    if parsed.drivername.startswith("sqlite"):
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 3306}"
