"""A PSF model per CCD and PSF photometry (PSFEx and SExtractor's PSF fit in DES SE).

The stars are stacked as photutils' ePSF builder does, at the native pixel scale: stamps of
bright, isolated, unsaturated stars are shifted to a common centre (sub-pixel, by the
Fourier shift theorem), scaled by their core flux and median-combined, re-centred on the
result's centroid, and repeated. A Moffat profile is then fitted to the stack (a grid over
FWHM and beta, the amplitude linear): the model is analytic, normalised to unit *total*
flux, so PSF fluxes include the wings beyond the stamp and the noise and crowding of the
stack's outskirts do not enter the normalisation. Photometry fits the model at each
source's position with a linear least-squares flux and local background, weighted by the
weight plane; everything runs on arrays of stamps, no loop over pixels.
"""

from __future__ import annotations

import numpy as np


def _shift(stamps: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Shift each (n, s, s) stamp by (dx, dy) pixels (positive moves content right/up)."""
    size = stamps.shape[-1]
    k = np.fft.fftfreq(size)
    phase = np.exp(
        -2j
        * np.pi
        * (
            k[None, None, :] * np.asarray(dx)[:, None, None]
            + k[None, :, None] * np.asarray(dy)[:, None, None]
        )
    )
    return np.real(np.fft.ifft2(np.fft.fft2(stamps) * phase))


def cut_stamps(image: np.ndarray, x: np.ndarray, y: np.ndarray, radius: int) -> np.ndarray:
    """(n, 2r+1, 2r+1) stamps centred on the nearest pixels to 0-based (x, y); outside the
    image is 0."""
    padded = np.pad(image, radius, mode="constant")
    ix, iy = np.rint(x).astype(int) + radius, np.rint(y).astype(int) + radius
    offsets = np.arange(-radius, radius + 1)
    rows = iy[:, None, None] + offsets[None, :, None]
    cols = ix[:, None, None] + offsets[None, None, :]
    return padded[rows, cols]


def build_psf(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, radius: int = 15, iterations: int = 3
) -> np.ndarray:
    """A normalised (sum 1) PSF stamp of size 2r+1 from stars at 0-based (x, y)."""
    if np.size(x) < 3:
        raise ValueError(f"a PSF needs at least 3 stars, got {np.size(x)}")
    stamps = cut_stamps(image, x, y, radius).astype(float)
    dx0, dy0 = x - np.rint(x), y - np.rint(y)
    dx, dy = -dx0, -dy0
    grid = np.arange(-radius, radius + 1)
    r = np.hypot(grid[None, :], grid[:, None])
    core, ring = r <= max(3.0, radius / 3), r >= radius - 2
    # Each star's scale from the core only, so neighbours and noise far out in its stamp do
    # not dilute it; then the median stamp, its outer ring taken as zero, sums to 1.
    scale = stamps[:, core].sum(axis=1)
    psf = np.zeros(stamps.shape[1:])
    for _ in range(iterations):
        shifted = _shift(stamps, dx, dy) / scale[:, None, None]
        psf = np.median(shifted, axis=0)
        psf -= np.median(psf[ring])
        psf /= psf.sum()
        weighted = psf * core
        cx = (weighted * grid[None, :]).sum() / weighted.sum()
        cy = (weighted * grid[:, None]).sum() / weighted.sum()
        dx, dy = dx - cx, dy - cy
        model = psf[core]
        scale = (_shift(stamps, dx, dy)[:, core] * model).sum(axis=1) / (model * model).sum()
    return psf


def moffat(radius: int, fwhm, beta, dx=0.0, dy=0.0) -> np.ndarray:
    """Moffat stamps (..., 2r+1, 2r+1) of unit total flux (over the whole plane), centred
    ``dx, dy`` from the central pixel; ``fwhm``, ``beta``, ``dx``, ``dy`` broadcast."""
    fwhm, beta = np.asarray(fwhm, float)[..., None, None], np.asarray(beta, float)[..., None, None]
    dx, dy = np.asarray(dx, float)[..., None, None], np.asarray(dy, float)[..., None, None]
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    grid = np.arange(-radius, radius + 1, dtype=float)
    r2 = (grid[None, :] - dx) ** 2 + (grid[:, None] - dy) ** 2
    return (beta - 1) / (np.pi * alpha**2) * (1 + r2 / alpha**2) ** (-beta)


def fit_moffat(stack: np.ndarray) -> dict[str, float]:
    """FWHM (pixels) and beta of the Moffat profile closest to a stacked PSF, by a coarse
    then a fine grid (the amplitude solved linearly at each point), over the core r <= 8."""
    radius = stack.shape[0] // 2
    grid = np.arange(-radius, radius + 1)
    core = np.hypot(grid[None, :], grid[:, None]) <= min(8, radius)
    data = stack[core]
    best = (4.0, 3.0)
    for fwhm_step, beta_step, span in ((0.25, 0.25, None), (0.02, 0.05, 1)):
        if span is None:
            fwhms, betas = np.arange(1.0, 15.0, fwhm_step), np.arange(1.3, 8.0, beta_step)
        else:
            fwhms = np.arange(best[0] - 0.3, best[0] + 0.3, fwhm_step)
            betas = np.arange(max(1.2, best[1] - 0.4), best[1] + 0.4, beta_step)
        f, b = np.meshgrid(fwhms, betas, indexing="ij")
        models = moffat(radius, f, b)[..., core]
        amplitude = (models * data).sum(-1) / (models * models).sum(-1)
        chi2 = ((data - amplitude[..., None] * models) ** 2).sum(-1)
        i, j = np.unravel_index(np.argmin(chi2), chi2.shape)
        best = (float(fwhms[i]), float(betas[j]))
    return {"fwhm": best[0], "beta": best[1]}


def psf_photometry(
    image: np.ndarray,
    weight: np.ndarray,
    model: dict[str, float],
    x: np.ndarray,
    y: np.ndarray,
    radius: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total flux, flux error and reduced chi^2 of the Moffat ``model`` (plus a constant
    local background) fitted at each 0-based (x, y) within ``radius`` pixels.

    Masked pixels (weight 0) do not count; a source with no usable pixel gets NaN."""
    if np.size(x) == 0:
        empty = np.empty(0)
        return empty, empty, empty
    data = cut_stamps(image, x, y, radius).astype(float)
    w = cut_stamps(weight, x, y, radius).astype(float)
    model = moffat(radius, model["fwhm"], model["beta"], x - np.rint(x), y - np.rint(y))
    # Flux and a local constant background together (2x2 normal equations per source).
    smm = (w * model * model).sum(axis=(1, 2))
    sm = (w * model).sum(axis=(1, 2))
    s1 = w.sum(axis=(1, 2))
    sdm = (w * data * model).sum(axis=(1, 2))
    sd = (w * data).sum(axis=(1, 2))
    determinant = smm * s1 - sm * sm
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = (sdm * s1 - sm * sd) / determinant
        level = (smm * sd - sm * sdm) / determinant
        error = np.sqrt(s1 / determinant)
        residual = data - flux[:, None, None] * model - level[:, None, None]
        dof = np.maximum((w > 0).sum(axis=(1, 2)) - 2, 1)
        chi2 = (w * residual**2).sum(axis=(1, 2)) / dof
    bad = ~(determinant > 0)
    flux[bad], error[bad], chi2[bad] = np.nan, np.nan, np.nan
    return flux, error, chi2
