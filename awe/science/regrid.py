"""Resampling reduced frames onto a common sky grid, flux conserving, with weights.

The grid is a gnomonic (TAN) projection centred on (``ra``, ``dec``) with square pixels of
``pixel_scale`` arcsec, fixed on the sky. Each regridded frame is the part of that grid its
CCD covers: the grid's WCS with the reference pixel moved by whole pixels, so frames of one
field line up pixel for pixel and a coadd only adds arrays (no second resampling).

Resampling is bilinear interpolation of surface brightness (reproject_interp's
``order='bilinear'``, edge conventions included), times the ratio of output to input pixel
area at each place (flux conservation, also under distortion), and the photometric scaling
to a common zeropoint. The weight is interpolated the same way at the same positions (as
reproject_and_coadd does), divided by the square of the scaling; an output pixel whose
interpolation touches a pixel of weight 0 gets weight 0, so a bad pixel stays bad. The
WCS transforms are made on coarse nodes only (:func:`pixel_mapping`).
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


@dataclass
class PixelMapping:
    """Where each output pixel falls on the input, known exactly on coarse nodes (every
    ``step`` output pixels, the last node past the last pixel) and bilinear between:
    the mapping and its Jacobian vary slowly, so tens of thousands of WCS transforms stand in
    for one per pixel, millions (where reproject_interp spends 90 % of its time)."""

    x: np.ndarray  # input column at each node, (rows, cols)
    y: np.ndarray  # input row at each node
    area: np.ndarray | float  # output over input pixel area at each node, or one value
    step: int


def pixel_mapping(
    wcs_out, wcs_in, shape_out: tuple[int, int], step: int = 16, tolerance: float = 1e-6
) -> PixelMapping:
    """The output-to-input pixel mapping on nodes every ``step`` pixels, with the pixel-area
    ratio from its local Jacobian; the ratio becomes one number when it varies by less than
    ``tolerance`` over the frame (no distortion to speak of)."""
    ny, nx = shape_out
    rows = np.arange((ny - 1) // step + 2) * float(step)
    cols = np.arange((nx - 1) // step + 2) * float(step)
    yy, xx = np.meshgrid(rows, cols, indexing="ij")

    def input_pixels(x, y):
        ra, dec = wcs_out.all_pix2world(x, y, 0)
        return wcs_in.all_world2pix(ra, dec, 0)

    x, y = input_pixels(xx, yy)
    h = 0.5
    xa, ya = input_pixels(xx + h, yy)
    xb, yb = input_pixels(xx - h, yy)
    xc, yc = input_pixels(xx, yy + h)
    xd, yd = input_pixels(xx, yy - h)
    jacobian = np.abs((xa - xb) * (yc - yd) - (xc - xd) * (ya - yb))  # input px per output px
    typical = float(np.nanmedian(jacobian))
    spread = float(np.nanmax(np.abs(jacobian - typical))) / typical
    area = typical if spread < tolerance else jacobian
    return PixelMapping(x=x, y=y, area=area, step=step)


def _upsample(nodes: np.ndarray, step: int, rows: slice, nx: int) -> np.ndarray:
    """Bilinear interpolation of node values onto output rows ``rows`` (within one band of
    nodes or more) and columns 0..nx-1."""
    r = np.arange(rows.start, rows.stop)
    c = np.arange(nx)
    r0, fr = np.divmod(r, step)
    c0, fc = np.divmod(c, step)
    fr = (fr / step)[:, None]
    fc = fc / step
    band = nodes[r0.min() : r0.max() + 2]
    across = band[:, c0] * (1 - fc) + band[:, c0 + 1] * fc  # node rows, every column
    k = r0 - r0.min()
    return across[k] * (1 - fr) + across[k + 1] * fr


def _bilinear(planes: tuple[np.ndarray, ...], x: np.ndarray, y: np.ndarray):
    """Every plane (same shape) bilinearly interpolated at input pixels (x, y), sharing the
    indices and fractions. As reproject does: a point in the outer half of a border pixel
    takes that pixel's value, a point further out is NaN."""
    ny, nx = planes[0].shape
    outside = (x < -0.5) | (x > nx - 0.5) | (y < -0.5) | (y > ny - 0.5) | ~np.isfinite(x + y)
    xs = np.clip(np.nan_to_num(x), 0, nx - 1)
    ys = np.clip(np.nan_to_num(y), 0, ny - 1)
    xi = np.minimum(xs.astype(np.intp), max(nx - 2, 0))
    yi = np.minimum(ys.astype(np.intp), max(ny - 2, 0))
    fx = (xs - xi).astype(np.float32)
    fy = (ys - yi).astype(np.float32)
    k = yi * nx + xi
    dx, dy = min(1, nx - 1), min(1, ny - 1) * nx
    results = []
    for plane in planes:
        flat = plane.ravel()
        a, b = flat[k], flat[k + dx]
        c, d = flat[k + dy], flat[k + dy + dx]
        top = a + fx * (b - a)
        value = top + fy * (c + fx * (d - c) - top)
        value[outside] = np.nan
        results.append(value)
    return results


def regrid(
    image: np.ndarray,
    weight: np.ndarray | None,
    wcs_in,
    grid,
    *,
    scale: float = 1.0,
    rows_per_block: int = 128,
) -> Regridded:
    """Resample ``image`` (and its weight) onto the grid, flux conserving, times ``scale``.

    One pass per block of output rows: the pixel mapping comes from :func:`pixel_mapping`'s
    nodes, image and weight are interpolated bilinearly at the same input positions (as
    reproject_interp's ``order='bilinear'`` and reproject_and_coadd's weights), in float32.
    Input pixels of weight 0 are NaN in the image, so an output pixel whose interpolation
    touches a bad pixel gets weight 0: a bad pixel stays bad (its value does not leak)."""
    offset, shape = footprint(wcs_in, image.shape, grid)
    wcs_out = cutout_wcs(grid, offset)
    if weight is None:
        weight = np.ones(image.shape, np.float32)
    weight = np.asarray(weight, np.float32)
    source = np.where(weight > 0, image, np.nan).astype(np.float32)
    mapping = pixel_mapping(wcs_out, wcs_in, shape)
    ny, nx = shape
    out = np.zeros(shape, np.float32)
    out_weight = np.zeros(shape, np.float32)
    block = max(mapping.step, rows_per_block - rows_per_block % mapping.step)
    for start in range(0, ny, block):
        rows = slice(start, min(start + block, ny))
        x = _upsample(mapping.x, mapping.step, rows, nx)
        y = _upsample(mapping.y, mapping.step, rows, nx)
        values, weights = _bilinear((source, weight), x, y)
        if isinstance(mapping.area, float):
            factor = np.float32(mapping.area * scale)
        else:
            factor = (_upsample(mapping.area, mapping.step, rows, nx) * scale).astype(np.float32)
        covered = np.isfinite(values) & np.isfinite(weights)
        out[rows] = np.where(covered, values * factor, 0.0)
        out_weight[rows] = np.where(covered, weights / np.float32(scale**2), 0.0)
    return Regridded(image=out, weight=out_weight, wcs=wcs_out, offset=offset)


def photometric_scale(
    zeropoint: float, extinction: float, airmass: float, exposure_time: float
) -> float:
    """The factor taking ADU of this exposure to flux at :data:`COMMON_ZEROPOINT`:
    ``mag = zeropoint - extinction * airmass + 2.5 log10(t) - 2.5 log10(ADU)``."""
    frame_zeropoint = zeropoint - extinction * airmass + 2.5 * np.log10(exposure_time)
    return float(10 ** (0.4 * (COMMON_ZEROPOINT - frame_zeropoint)))
