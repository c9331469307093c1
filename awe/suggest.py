"""The "did you mean" hint of AWE's error messages, for names a user typed (a setting, an
option, a sequence): one wording everywhere, from :func:`difflib.get_close_matches`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, choices: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> str:
    """``" Did you mean 'host'?"`` (``'a' or 'b'`` when ``n`` allows several), or ``""``
    when no choice is close; made to follow a sentence's full stop."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=cutoff)
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
