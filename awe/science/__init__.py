"""Pure science functions over arrays: the bottom layer of AWE.

Modules here import numpy, scipy, astropy and other libraries, never the rest of ``awe``,
so each can be checked alone against truth and against independent libraries (ccdproc,
photutils, sep, reproject). Thin tasks in ``sequences/`` select, read, call, write.
"""
