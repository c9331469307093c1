"""The whole-exposure sky of DES SE (``sky_combine`` then ``sky_fit``), as pure functions.

Every CCD sends its compressed sky (block medians) with each block's position in the
exposure's tangent plane; the blocks of all CCDs are combined and fitted with a low-order
2-d polynomial over the focal plane, iteratively clipped so that blocks holding a bright
star or a bleed trail do not pull it. Each CCD then subtracts the model at its pixels.
(DES fits a PCA template of the sky; a polynomial is the low-order stand-in.)
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
