"""PNG previews of FITS images: the first image HDU, reduced to at most
:data:`MAX_SIDE` pixels a side by block averaging, scaled between robust limits and
stretched with asinh (astropy.visualization), so faint sky and bright stars both show."""

from __future__ import annotations

import io
import warnings
from os import PathLike

import numpy as np
from astropy.io import fits
from astropy.visualization import AsinhStretch, ZScaleInterval

#: Longest side of a preview, in pixels.
MAX_SIDE = 512
#: Asinh softening: smaller shows fainter structure.
ASINH_A = 0.1


class NotAnImage(ValueError):
    """A file with no 2-D image in it."""


def image_data(path: str | PathLike[str]) -> np.ndarray:
    """The first 2-D (or higher: its first plane) image of a FITS file, as float32."""
    with fits.open(path, memmap=False) as hdus:
        for hdu in hdus:
            data = getattr(hdu, "data", None)
            if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) and (
                data is not None and data.ndim >= 2
            ):
                while data.ndim > 2:
                    data = data[0]
                return np.asarray(data, dtype=np.float32)
    raise NotAnImage(f"{path} holds no image (no HDU with 2-D data)")


def block_reduce(image: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Average ``factor x factor`` blocks so the longest side is at most ``max_side``
    (edges that do not fill a block are dropped). NaNs are ignored within a block."""
    factor = int(np.ceil(max(image.shape) / max_side))
    if factor <= 1:
        return image
    rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = image[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN block is NaN, fine
        return np.nanmean(blocks, axis=(1, 3))


def stretch(image: np.ndarray) -> np.ndarray:
    """8-bit grey levels: zscale limits, then asinh. Non-finite pixels become black."""
    finite = np.isfinite(image)
    if not finite.any():
        return np.zeros(image.shape, dtype=np.uint8)
    filled = np.where(finite, image, np.nanmedian(image[finite]))
    low, high = ZScaleInterval().get_limits(filled)
    span = high - low if high > low else 1.0
    scaled = AsinhStretch(ASINH_A)(np.clip((filled - low) / span, 0.0, 1.0), clip=True)
    grey = np.round(scaled * 255).astype(np.uint8)
    grey[~finite] = 0
    return grey


def fits_preview_png(path: str | PathLike[str], max_side: int = MAX_SIDE) -> bytes:
    """A PNG of the FITS image at ``path``, north (row 0 of FITS) at the bottom."""
    from PIL import Image

    grey = stretch(block_reduce(image_data(path), max_side))
    buffer = io.BytesIO()
    Image.fromarray(np.flipud(grey), mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
