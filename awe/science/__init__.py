"""Pure science functions: numbers in, numbers out.

Overscan correction, combining frames, flats, source extraction, astrometry, galaxy
morphology, SED fitting: one module per idea, each a set of plain functions over numpy
arrays (and astropy or scipy objects), checkable alone against the simulator's truth and
against independent libraries (ccdproc, photutils, sep). This package imports nothing else
from AWE, and nothing in it reads files, the database or the configuration: the thin tasks
in ``sequences/`` select, read, call these functions, write and report. The layer contract
in ``setup.cfg`` keeps it so (``lint-imports``).
"""
