"""An empirical PSF per CCD and PSF photometry (PSFEx and SExtractor's PSF fit in DES SE).

The PSF is built as photutils' ePSF is, at the native pixel scale: stamps of bright,
isolated, unsaturated stars are shifted to a common centre (sub-pixel, by the Fourier
shift theorem), normalised to unit flux and median-combined, re-centred on the result's
centroid, and repeated. Photometry fits the PSF shifted to each source's position with a
linear least-squares flux, weighted by the weight plane; everything runs on arrays of
stamps, no loop over pixels.
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
    psf = np.zeros(stamps.shape[1:])
    for _ in range(iterations):
        shifted = _shift(stamps, dx, dy)
        shifted /= shifted.sum(axis=(1, 2), keepdims=True)
        psf = np.median(shifted, axis=0)
        core = psf * (np.hypot(grid[None, :], grid[:, None]) <= 3)
        cx, cy = (
            (core * grid[None, :]).sum() / core.sum(),
            (core * grid[:, None]).sum() / core.sum(),
        )
        dx, dy = dx - cx, dy - cy
    psf = np.clip(psf, 0, None)
    return psf / psf.sum()


def psf_photometry(
    image: np.ndarray, weight: np.ndarray, psf: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flux, flux error and reduced chi^2 of the PSF fitted at each 0-based (x, y).

    Masked pixels (weight 0) do not count; a source with no usable pixel gets NaN."""
    radius = psf.shape[0] // 2
    if np.size(x) == 0:
        empty = np.empty(0)
        return empty, empty, empty
    data = cut_stamps(image, x, y, radius).astype(float)
    w = cut_stamps(weight, x, y, radius).astype(float)
    model = _shift(np.broadcast_to(psf, data.shape).copy(), x - np.rint(x), y - np.rint(y))
    norm = (w * model * model).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        flux = (w * data * model).sum(axis=(1, 2)) / norm
        error = 1 / np.sqrt(norm)
        residual = data - flux[:, None, None] * model
        dof = np.maximum((w > 0).sum(axis=(1, 2)) - 1, 1)
        chi2 = (w * residual**2).sum(axis=(1, 2)) / dof
    bad = norm <= 0
    flux[bad], error[bad], chi2[bad] = np.nan, np.nan, np.nan
    return flux, error, chi2


def fwhm_pixels(psf: np.ndarray) -> float:
    """FWHM of a PSF stamp from the area above half maximum (a circular equivalent)."""
    area = (psf >= psf.max() / 2).sum()
    return float(2 * np.sqrt(area / np.pi))
