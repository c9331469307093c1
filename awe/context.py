"""Session defaults for the lower layers: the database and data store a call means when its
caller names none.

The data and database layers take ``database=`` and ``store=`` explicitly. At the prompt it
is handier to leave them out (``RawBiasFrame.select(instrument='WFI')``); they then ask this
module for the *session*: an object with ``database`` (an :class:`awe.db.engine.Database`)
and ``env`` (an :class:`awe.env.Env`), in practice the session's Processor.

This module is at the bottom of AWE and imports nothing above it. The session reaches it
two ways: ``with using(dpu):`` makes ``dpu`` the session for the code inside (a ContextVar,
so threads and asyncio tasks keep their own), and outside any ``using`` the session is the
one the composition root (``awe/__init__.py``) knows how to open: the ``dpu`` of
``from awe import dpu``, created on first use. The same root tells this module where an
instrument's nights end (:func:`site_midnight`), a fact of the instrument files that the
database layer needs for "the calibration valid on this night".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any, Protocol

from awe.errors import AweError


class Session(Protocol):
    """What the lower layers use of a session (the Processor is one)."""

    @property
    def database(self) -> Any: ...

    @property
    def env(self) -> Any: ...


class NoSession(AweError):
    """A call left out its database or store, and no session is there to give one."""


_current: ContextVar[Session | None] = ContextVar("awe_session", default=None)
_open_session: Callable[[], Session] | None = None
_site_midnight: Callable[[str, date], datetime] | None = None


def provide(
    *,
    open_session: Callable[[], Session] | None = None,
    site_midnight: Callable[[str, date], datetime] | None = None,
) -> None:
    """Called by the composition root: how to open the default session, and how to find
    the instant of local midnight of a night at an instrument's site."""
    global _open_session, _site_midnight
    if open_session is not None:
        _open_session = open_session
    if site_midnight is not None:
        _site_midnight = site_midnight


@contextlib.contextmanager
def using(session: Session) -> Iterator[Session]:
    """Make ``session`` the default inside the ``with`` block (this thread or task only)."""
    token = _current.set(session)
    try:
        yield session
    finally:
        _current.reset(token)


def current_session() -> Session:
    """The session of this context: the innermost ``using``, else the default session."""
    session = _current.get()
    if session is None and _open_session is not None:
        session = _open_session()
    if session is None:
        raise NoSession(
            "no AWE session to take the database and data store from: pass database= "
            "(and store=), or start one with: from awe import dpu"
        )
    return session


def session_database(database: Any = None) -> Any:
    """``database`` if given, else the session's."""
    return database if database is not None else current_session().database


def session_data_root() -> str:
    """The folder of the session's data store (``Env.data_root``)."""
    return current_session().env.data_root


def site_midnight(instrument: str, night: date) -> datetime:
    """Local midnight inside ``night`` at ``instrument``'s site, as an aware UTC datetime."""
    if _site_midnight is None:
        raise NoSession(
            f"the site of {instrument!r} is unknown here: pass at= (an aware datetime) "
            f"instead of night="
        )
    return _site_midnight(instrument, night)
