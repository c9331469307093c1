"""A sequence the web tests run: one small FITS image per chip, committed as a frame, with a
known bright pixel so the preview can be checked. Registered by copying into
``$AWE_HOME/sequences/``."""

import numpy as np
from astropy.io import fits

from awe.sequence import Option, Unit, sequence

#: Image shape (rows, columns) and where its one bright pixel sits (row, column).
SHAPE = (48, 64)
STAR = (10, 20)


@sequence(
    options=[Option("i", "instrument", str, required=True)],
    fan_out="chip",
    select=lambda options, context: [Unit(key="ccd50")],
)
def MakeImage(task):
    """Write a flat image with one bright pixel and report it as a BiasFrame."""
    data = np.random.default_rng(0).normal(100.0, 3.0, SHAPE).astype(np.float32)
    data[STAR] = 5000.0
    path = task.work_dir / f"image_{task.unit.key}.fits"
    fits.writeto(path, data)
    task.add_product(path, "BiasFrame", chip=task.unit.key, night="2000-04-28")
