"""Pure science functions over arrays: the bottom layer of AWE.

Modules here import numpy, scipy, astropy and other libraries, never the rest of ``awe``,
so each can be checked alone against truth and against independent libraries (ccdproc,
photutils, sep, reproject). Each module holds one idea (overscan correction, clipped
stacking, flats, pixel maps, fringes, gain, quality checks, reduction, source extraction,
astrometry, regridding, coadding, SED model libraries and fits, POGS work units). Thin
tasks in ``sequences/`` select, read, call, write.
"""
