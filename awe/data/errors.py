"""Errors of the data layer. Each message names the thing (file, keyword, instrument) and
says what would be right, so a user ingesting a night of data can act without a traceback."""

from __future__ import annotations

from awe.errors import AweError


class DataError(AweError):
    """Base class of the data layer's deliberate errors."""


class InstrumentError(DataError):
    """An instrument, chip or filter is unknown, or an instrument file is malformed."""


class StoreError(DataError):
    """The data store cannot hold or give back a file."""


class MissingFileError(StoreError):
    """The store has no file with the requested hash."""


class CorruptFileError(StoreError):
    """A stored file no longer has the hash it was stored under."""


class IngestError(DataError):
    """One input file cannot be ingested; the message names the file and the problem."""
