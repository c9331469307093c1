"""Exceptions AWE raises on purpose.

Every message says what was wrong and what would be right, so the user can act on it
without reading a traceback. Catch :class:`AweError` to catch them all.
"""


class AweError(Exception):
    """Base class of every error AWE raises deliberately."""


class ConfigError(AweError):
    """A configuration value, file or environment variable is not usable."""


class DatabaseError(AweError):
    """The job database cannot be reached, created or upgraded."""
