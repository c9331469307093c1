"""FITS previews: block averaging checked against astropy's own block_reduce, the asinh
stretch against its definition, and files that hold no image."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import block_reduce as astropy_block_reduce
from astropy.visualization import ZScaleInterval

from awe.report.preview import (
    ASINH_A,
    NotAnImage,
    block_reduce,
    fits_preview_png,
    image_data,
    stretch,
)


def test_block_reduce_matches_astropy() -> None:
    image = np.random.default_rng(3).normal(0, 1, (1030, 2049)).astype(np.float32)
    mine = block_reduce(image, max_side=512)
    factor = int(np.ceil(2049 / 512))
    theirs = astropy_block_reduce(
        image[: 1030 // factor * factor, : 2049 // factor * factor], factor, func=np.mean
    )
    assert mine.shape == theirs.shape and max(mine.shape) <= 512
    np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    small = image[:100, :200]
    assert block_reduce(small, 512) is small


def test_stretch_is_monotonic_with_sky_dark_and_stars_white() -> None:
    rng = np.random.default_rng(4)
    image = rng.normal(1000.0, 10.0, (200, 200))
    image[50, 60] = 1e6
    image[0, 0] = np.nan
    grey = stretch(image)
    assert grey.dtype == np.uint8 and grey[50, 60] == 255 and grey[0, 0] == 0
    order = np.argsort(image[1:, :].ravel())
    assert np.all(np.diff(grey[1:, :].ravel()[order].astype(int)) >= 0)  # monotonic
    # The definition: zscale limits, then y = asinh(x / a) / asinh(1 / a), a = ASINH_A.
    filled = np.where(np.isfinite(image), image, np.nanmedian(image))
    low, high = ZScaleInterval().get_limits(filled)
    x = np.clip((image[1:, :] - low) / (high - low), 0, 1)
    expected = np.round(255 * np.arcsinh(x / ASINH_A) / np.arcsinh(1 / ASINH_A))
    np.testing.assert_allclose(grey[1:, :], expected, atol=1)
    # asinh lifts the faint end: the sky's median lands well above a linear stretch's.
    assert np.median(grey) > 255 * np.median(x) + 50


def test_first_image_hdu_is_used_and_tables_are_refused(tmp_path) -> None:
    cube = np.arange(2 * 30 * 40, dtype=np.float32).reshape(2, 30, 40)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(cube)]).writeto(tmp_path / "cube.fits")
    np.testing.assert_array_equal(image_data(tmp_path / "cube.fits"), cube[0])
    assert fits_preview_png(tmp_path / "cube.fits")[:8] == b"\x89PNG\r\n\x1a\n"
    table = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.ones(3))])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    with pytest.raises(NotAnImage, match="holds no image"):
        image_data(tmp_path / "table.fits")
