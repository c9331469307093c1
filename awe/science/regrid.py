"""Resampling reduced frames onto a common sky grid, flux conserving, with weights.

The grid is a gnomonic (TAN) projection centred on (``ra``, ``dec``) with square pixels of
``pixel_scale`` arcsec, fixed on the sky. Each regridded frame is the part of that grid its
CCD covers: the grid's WCS with the reference pixel moved by whole pixels, so frames of one
field line up pixel for pixel and a coadd only adds arrays (no second resampling).

Resampling is reproject's bilinear interpolation of surface brightness, times the ratio of
output to input pixel area at each place (flux conservation, also under distortion), and
the photometric scaling to a common zeropoint. The weight is resampled the same way (by
nearest neighbour, so a bad pixel stays bad), divided by the square of the scaling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMMON_ZEROPOINT = 30.0  # magnitude of one unit of flux in regridded and coadded frames


@dataclass
class Regridded:
    image: np.ndarray
    weight: np.ndarray
    wcs: object  # astropy.wcs.WCS of this cutout of the grid
    offset: tuple[int, int]  # (x, y) of the cutout's pixel 0, 0 on the grid


def grid_wcs(ra: float, dec: float, pixel_scale: float):
    """The common grid: TAN at (ra, dec), north up, east left, ``pixel_scale`` arcsec."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [1.0, 1.0]
    wcs.wcs.cdelt = [-pixel_scale / 3600.0, pixel_scale / 3600.0]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.set()
    return wcs


def cutout_wcs(grid, offset: tuple[int, int]):
    """The grid's WCS for a cutout whose pixel (0, 0) is grid pixel ``offset``."""
    wcs = grid.deepcopy()
    wcs.wcs.crpix = [grid.wcs.crpix[0] - offset[0], grid.wcs.crpix[1] - offset[1]]
    wcs.wcs.set()
    return wcs


def footprint(wcs_in, shape: tuple[int, int], grid, margin: int = 2):
    """(offset, shape) of the grid cutout covering an input image (edges sampled)."""
    ny, nx = shape
    t = np.linspace(0, 1, 33)
    xs = np.concatenate([t * (nx - 1), np.full_like(t, nx - 1), t * (nx - 1), np.zeros_like(t)])
    ys = np.concatenate([np.zeros_like(t), t * (ny - 1), np.full_like(t, ny - 1), t * (ny - 1)])
    ra, dec = wcs_in.all_pix2world(xs, ys, 0)
    gx, gy = grid.all_world2pix(ra, dec, 0)
    x0, y0 = int(np.floor(gx.min())) - margin, int(np.floor(gy.min())) - margin
    x1, y1 = int(np.ceil(gx.max())) + margin, int(np.ceil(gy.max())) + margin
    return (x0, y0), (y1 - y0 + 1, x1 - x0 + 1)


def pixel_area_ratio(wcs_out, wcs_in, shape_out: tuple[int, int], step: int = 16) -> np.ndarray:
    """Output over input pixel area at every output pixel (from the local Jacobian of the
    mapping, sampled every ``step`` pixels and interpolated: it varies slowly)."""
    from scipy.ndimage import map_coordinates

    ny, nx = shape_out
    gy = np.arange(0, ny + step, step, dtype=float)
    gx = np.arange(0, nx + step, step, dtype=float)
    yy, xx = np.meshgrid(gy, gx, indexing="ij")

    def input_pixels(x, y):
        ra, dec = wcs_out.all_pix2world(x, y, 0)
        return wcs_in.all_world2pix(ra, dec, 0)

    h = 0.5
    xa, ya = input_pixels(xx + h, yy)
    xb, yb = input_pixels(xx - h, yy)
    xc, yc = input_pixels(xx, yy + h)
    xd, yd = input_pixels(xx, yy - h)
    jacobian = np.abs((xa - xb) * (yc - yd) - (xc - xd) * (ya - yb))  # input px per output px
    rows = np.arange(ny) / step
    cols = np.arange(nx) / step
    r, c = np.meshgrid(rows, cols, indexing="ij")
    return map_coordinates(jacobian, [r, c], order=1, mode="nearest")


def regrid(
    image: np.ndarray,
    weight: np.ndarray | None,
    wcs_in,
    grid,
    *,
    scale: float = 1.0,
) -> Regridded:
    """Resample ``image`` (and its weight) onto the grid, flux conserving, times ``scale``."""
    from reproject import reproject_interp

    offset, shape = footprint(wcs_in, image.shape, grid)
    wcs_out = cutout_wcs(grid, offset)
    values, coverage = reproject_interp(
        (image.astype(np.float64), wcs_in), wcs_out, shape_out=shape, order="bilinear"
    )
    if weight is None:
        weight = np.ones(image.shape, np.float32)
    resampled_weight, _ = reproject_interp(
        (weight.astype(np.float64), wcs_in), wcs_out, shape_out=shape, order="nearest-neighbor"
    )
    area = pixel_area_ratio(wcs_out, wcs_in, shape)
    covered = (coverage > 0) & np.isfinite(values) & np.isfinite(resampled_weight)
    out = np.where(covered, values * area * scale, 0.0).astype(np.float32)
    out_weight = np.where(covered, resampled_weight / scale**2, 0.0).astype(np.float32)
    return Regridded(image=out, weight=out_weight, wcs=wcs_out, offset=offset)


def photometric_scale(
    zeropoint: float, extinction: float, airmass: float, exposure_time: float
) -> float:
    """The factor taking ADU of this exposure to flux at :data:`COMMON_ZEROPOINT`:
    ``mag = zeropoint - extinction * airmass + 2.5 log10(t) - 2.5 log10(ADU)``."""
    frame_zeropoint = zeropoint - extinction * airmass + 2.5 * np.log10(exposure_time)
    return float(10 ** (0.4 * (COMMON_ZEROPOINT - frame_zeropoint)))
