"""The data layer: instruments, the content-addressed data store, FITS ingest, the simulator.

``awe.data.ingest(paths)`` ingests raw FITS files into the session's database and data
store; ``awe.data.simulate_night(...)`` writes a realistic simulated night with its truth.
Both import their (heavy) modules on call, so ``import awe.data`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from awe.data.ingestion import IngestReport
    from awe.data.simulate import SimulatedNight


def ingest(
    paths: Iterable[str | PathLike[str]] | str | PathLike[str], **kwargs: Any
) -> IngestReport:
    """Ingest raw FITS files (or folders of them); see :func:`awe.data.ingestion.ingest`."""
    from awe.data.ingestion import ingest as _ingest

    return _ingest(paths, **kwargs)


def simulate_night(
    instrument: str, night: str, out: str | PathLike[str], **kwargs: Any
) -> SimulatedNight:
    """Write a simulated night of raw data; see :func:`awe.data.simulate.simulate_night`."""
    from awe.data.simulate import simulate_night as _simulate_night

    return _simulate_night(instrument, night, out, **kwargs)
