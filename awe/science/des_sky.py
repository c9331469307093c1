"""The whole-exposure sky of DES SE (``sky_combine`` then ``sky_fit``), as pure functions.

Every CCD sends its compressed sky (block medians) with each block's position in the
exposure's tangent plane; the blocks of all CCDs are combined and fitted with a low-order
2-d polynomial over the focal plane, iteratively clipped so that blocks holding a bright
star or a bleed trail do not pull it. Each CCD then subtracts the model at its pixels.

Beside it, a PCA model (DES's ``sky_pca``): the block grids of all CCDs of the exposure are
the rows of one matrix, its leading principal components (found in the exposure itself, as
there is no library of DES sky templates here) are the sky's shapes shared by every CCD, and
each CCD gets its own coefficients. It follows what a polynomial over the focal plane cannot:
a level per CCD, amplifier steps and edge glow repeated CCD after CCD.
"""

from __future__ import annotations

import numpy as np

from awe.science.astrometry import polynomial_terms


def fit_sky(
    u: np.ndarray, v: np.ndarray, values: np.ndarray, order: int = 2, clip: float = 3.0
) -> dict[str, object]:
    """Fit ``values`` (block medians, electrons) at focal-plane positions ``u, v`` (degrees
    from the pointing) with a polynomial of total degree ``order``, clipping outliers at
    ``clip`` robust sigmas for up to 5 rounds. Returns the model as plain data."""
    u, v, values = (np.asarray(a, float).ravel() for a in (u, v, values))
    good = np.isfinite(values)
    if good.sum() < (order + 1) * (order + 2) // 2:
        order = 0
    scale = max(float(np.max(np.abs(np.concatenate([u[good], v[good]])))), 1e-6)
    design = polynomial_terms(u / scale, v / scale, order)[1]
    coefficients = np.zeros(design.shape[1])
    for _ in range(5):
        coefficients, *_ = np.linalg.lstsq(design[good], values[good], rcond=None)
        residual = values - design @ coefficients
        sigma = 1.4826 * np.median(np.abs(residual[good] - np.median(residual[good])))
        keep = np.isfinite(values) & (np.abs(residual) <= clip * max(sigma, 1e-6))
        if np.array_equal(keep, good):
            break
        good = keep
    return {
        "order": order,
        "scale_deg": scale,
        "coefficients": coefficients.tolist(),
        "blocks_used": int(good.sum()),
        "blocks": int(values.size),
        "rms": float(np.std((values - design @ coefficients)[good])),
    }


def evaluate_sky(model: dict[str, object], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The fitted sky at focal-plane positions ``u, v`` (any shape)."""
    scale = float(model["scale_deg"])
    terms = polynomial_terms(np.asarray(u) / scale, np.asarray(v) / scale, int(model["order"]))[1]
    return terms @ np.asarray(model["coefficients"], float)


def fit_pca_sky(blocks: np.ndarray, components: int = 3, clip: float = 3.0) -> dict[str, object]:
    """Fit the CCDs' compressed skies ``blocks`` (n_ccd, ny, nx), block medians in electrons
    with NaN where masked, by ``components`` principal components shared by all CCDs and
    each CCD's coefficients. Blocks more than ``clip`` robust sigmas off the model (a bright
    star, a bleed trail) are replaced by it and the components found again, up to 5 rounds.
    The components are not mean-subtracted: the first carries the sky level."""
    blocks = np.asarray(blocks, float)
    n, ny, nx = blocks.shape
    values = blocks.reshape(n, ny * nx)
    components = max(1, min(components, n, ny * nx))
    good = np.isfinite(values)
    if not good.any(axis=1).all():
        raise ValueError("a CCD has no unmasked sky block")
    # A robust start, so that a star's block does not become a component: each CCD's median
    # level times the median shape over the CCDs. Masked and clipped blocks enter the
    # decomposition as this model, then as the fitted one.
    level = np.array([np.median(row[ok]) for row, ok in zip(values, good, strict=True)])
    shape = np.nanmedian(values / level[:, None], axis=0)
    fill = np.nanmedian(values / shape, axis=1)[:, None] * shape[None, :]  # levels again
    good = _unclipped(values, fill, good, clip)
    for _ in range(5):
        _, _, vt = np.linalg.svd(np.where(good, values, fill), full_matrices=False)
        basis = vt[:components]
        # Each CCD's coefficients from its good blocks only (least squares, all CCDs at once).
        gram = np.einsum("kb,jb,nb->nkj", basis, basis, good.astype(float))
        right = np.einsum("kb,nb->nk", basis, np.where(good, values, 0.0))
        coefficients = np.linalg.solve(gram, right[..., None])[..., 0]
        fill = coefficients @ basis
        keep = _unclipped(values, fill, good, clip)
        if np.array_equal(keep, good):
            break
        good = keep
    return {
        "method": "pca",
        "shape": [ny, nx],
        "components": basis.tolist(),
        "coefficients": coefficients.tolist(),
        "blocks_used": int(good.sum()),
        "blocks": int(np.isfinite(values).sum()),
        "rms": float(np.std((values - fill)[good])),
    }


def _unclipped(values: np.ndarray, model: np.ndarray, good: np.ndarray, clip: float) -> np.ndarray:
    """The finite blocks within ``clip`` robust sigmas (of the ``good`` ones) of ``model``."""
    residual = values - model
    inside = residual[good]
    sigma = max(1.4826 * float(np.median(np.abs(inside - np.median(inside)))), 1e-6)
    return np.isfinite(values) & (np.abs(np.nan_to_num(residual, nan=np.inf)) <= clip * sigma)


def evaluate_pca_sky(model: dict[str, object], row: int) -> np.ndarray:
    """The block grid (ny, nx) of the PCA sky of the CCD in row ``row`` of the fit."""
    basis = np.asarray(model["components"], float)
    coefficients = np.asarray(model["coefficients"], float)[row]
    return (coefficients @ basis).reshape(model["shape"])


def interpolate_grid(
    grid: np.ndarray, gx: np.ndarray, gy: np.ndarray, nx: int, ny: int
) -> np.ndarray:
    """Bilinear interpolation of ``grid`` (values at columns ``gx``, rows ``gy``, both
    increasing, in 0-based pixels) to every pixel of an (ny, nx) image; constant beyond the
    outermost nodes."""

    def weights(nodes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if nodes.size == 1:
            zero = np.zeros(size, int)
            return zero, zero, np.zeros(size)
        where = np.arange(size, dtype=float)
        low = np.clip(np.searchsorted(nodes, where) - 1, 0, nodes.size - 2)
        t = np.clip((where - nodes[low]) / (nodes[low + 1] - nodes[low]), 0.0, 1.0)
        return low, low + 1, t

    grid = np.asarray(grid, float)
    x0, x1, tx = weights(np.asarray(gx, float), nx)
    y0, y1, ty = weights(np.asarray(gy, float), ny)
    rows = grid[:, x0] * (1 - tx) + grid[:, x1] * tx
    return rows[y0] * (1 - ty)[:, None] + rows[y1] * ty[:, None]
