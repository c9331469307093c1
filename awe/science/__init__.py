"""Pure science functions over numpy arrays: no files, no database, nothing else of AWE.

Each module holds one idea (overscan correction, clipped stacking, flats, pixel maps,
fringes, gain, quality checks) so that it can be checked alone, against the simulator's
truth and against independent libraries such as ccdproc. Sequences wrap them in thin
tasks that select, read, write and report.
"""
