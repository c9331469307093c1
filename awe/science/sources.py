"""Source extraction with sep (SExtractor's algorithms as a library).

Background and its rms on a mesh, detection above ``threshold`` times the local rms over
at least ``min_area`` connected pixels with deblending, then per source: windowed-free
barycentre position, second moments (a, b, theta), a fixed circular aperture flux and the
Kron ("auto") flux with their errors (background noise plus Poisson noise of the source
through the gain), the half-light radius, an FWHM estimate and SExtractor's flags, to
which pixels of zero weight (bad pixels, cosmic rays) inside the aperture add
:data:`FLAG_BAD_PIXELS`.

Positions are 0-based numpy pixels. Fluxes are in the image's units (ADU); magnitudes are
instrumental, ``-2.5 log10(flux)``, unless a zeropoint is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Added to sep's flags when a zero-weight pixel lies inside the aperture.
FLAG_BAD_PIXELS = 1024
KRON_FACTOR = 2.5
MIN_KRON_RADIUS = 3.5
COLUMNS = (
    "number", "x", "y", "a", "b", "theta", "fwhm", "flux_radius", "kron_radius",
    "flux_aper", "fluxerr_aper", "flux_auto", "fluxerr_auto", "mag_aper", "magerr_aper",
    "mag_auto", "magerr_auto", "peak", "background", "flags",
)  # fmt: skip


@dataclass(frozen=True)
class Extraction:
    """A catalogue (dict of equal-length arrays, :data:`COLUMNS`) and the background."""

    sources: dict[str, np.ndarray]
    background: float
    background_rms: float

    def __len__(self) -> int:
        return int(self.sources["x"].size)


def extract(
    image: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    threshold: float = 2.0,
    min_area: int = 5,
    aperture_radius: float = 5.0,
    gain: float = 1.0,
    zeropoint: float = 0.0,
    mesh: int = 64,
    deblend_contrast: float = 0.005,
) -> Extraction:
    """Detect and measure the sources of ``image`` (pixels of zero ``weight`` ignored)."""
    import sep

    data = np.ascontiguousarray(image, dtype=np.float64)
    mask = None if weight is None else np.ascontiguousarray(weight <= 0)
    mesh = max(16, min(mesh, min(data.shape) // 2))
    background = sep.Background(data, mask=mask, bw=mesh, bh=mesh, fw=3, fh=3)
    subtracted = data - background.back()
    rms = background.rms()
    objects = sep.extract(
        subtracted,
        threshold,
        err=rms,
        mask=mask,
        minarea=min_area,
        deblend_cont=deblend_contrast,
        clean=True,
    )
    if objects.size:
        keep = (objects["a"] > 0) & (objects["b"] > 0) & np.isfinite(objects["theta"])
        objects = objects[keep]
    x, y = objects["x"], objects["y"]
    a, b = objects["a"].astype(np.float64), objects["b"].astype(np.float64)
    theta = np.clip(objects["theta"].astype(np.float64), -np.pi / 2, np.pi / 2)  # float32 edge
    first_radius, _flag = sep.flux_radius(subtracted, x, y, 6.0 * a, 0.5, mask=mask, subpix=5)
    x, y = windowed_positions(subtracted, x, y, first_radius, mask)
    flux_aper, err_aper, flag_aper = sep.sum_circle(
        subtracted, x, y, aperture_radius, err=rms, mask=mask, gain=gain, subpix=0
    )
    kron, flag_kron = sep.kron_radius(subtracted, x, y, a, b, theta, 6.0, mask=mask)
    # SExtractor's PHOT_AUTOPARAMS 2.5, 3.5: the ellipse of KRON_FACTOR Kron radii, at least
    # MIN_KRON_RADIUS (both in units of a and b; checked against source-extractor itself)
    radius = np.maximum(KRON_FACTOR * np.nan_to_num(kron, nan=0.0), MIN_KRON_RADIUS)
    flux_auto, err_auto, flag_auto = sep.sum_ellipse(
        subtracted, x, y, a, b, theta, radius, err=rms, mask=mask, gain=gain, subpix=1
    )
    half_light, flag_radius = sep.flux_radius(
        subtracted, x, y, 6.0 * a, 0.5, normflux=flux_auto, subpix=5
    )
    flags = objects["flag"].astype(np.int64) | flag_aper | flag_kron | flag_auto | flag_radius
    if mask is not None and x.size:
        touched, _e, _f = sep.sum_circle(mask.astype(np.float64), x, y, aperture_radius)
        flags[touched > 0] |= FLAG_BAD_PIXELS
    sources = {
        "number": np.arange(1, x.size + 1, dtype=np.int64),
        "x": x,
        "y": y,
        "a": a,
        "b": b,
        "theta": theta,
        "fwhm": 2.0 * half_light,  # exact for a Gaussian (FWHM = 2 r_half)
        "flux_radius": half_light,
        "kron_radius": kron,
        "flux_aper": flux_aper,
        "fluxerr_aper": err_aper,
        "flux_auto": flux_auto,
        "fluxerr_auto": err_auto,
        "peak": objects["peak"],
        "background": background.back()[
            np.clip(np.rint(y).astype(int), 0, data.shape[0] - 1),
            np.clip(np.rint(x).astype(int), 0, data.shape[1] - 1),
        ],
        "flags": flags,
    }
    for kind in ("aper", "auto"):
        flux, error = sources[f"flux_{kind}"], sources[f"fluxerr_{kind}"]
        sources[f"mag_{kind}"], sources[f"magerr_{kind}"] = magnitudes(flux, error, zeropoint)
    return Extraction(
        sources={c: np.asarray(sources[c]) for c in COLUMNS},
        background=float(background.globalback),
        background_rms=float(background.globalrms),
    )


def windowed_positions(
    data: np.ndarray, x: np.ndarray, y: np.ndarray, half_light: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """SExtractor's XWIN/YWIN: centroids iterated in a Gaussian window of sigma
    d50 / 2.35, far less noisy than isophotal barycentres for faint sources. Where the
    window fails or wanders off by more than 2 pixels the barycentre stays."""
    if x.size == 0:
        return x, y
    sigma = np.clip(np.nan_to_num(2.0 * half_light / 2.35, nan=1.0), 0.5, 20.0)
    return _window(data, x, y, sigma, mask, max_shift=2.0)


def _window(
    data: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    mask: np.ndarray | None,
    max_shift: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """sep's windowed centroids in Gaussian windows of ``sigma``; the barycentre stays
    where the window fails (or, with ``max_shift``, moves that far or more)."""
    import sep

    xw, yw, flag = sep.winpos(data, x, y, sigma, mask=mask)
    good = flag == 0
    if max_shift is not None:
        good &= np.isfinite(xw) & np.isfinite(yw) & (np.hypot(xw - x, yw - y) < max_shift)
    return np.where(good, xw, x), np.where(good, yw, y)


def masked_background(
    image: np.ndarray, mask: np.ndarray, box: int = 128
) -> tuple[np.ndarray, float]:
    """The background map and its global rms with the objects masked: a first map finds
    the objects (3 sigma), their ellipses grown 4x are masked (with the pixels where
    ``mask`` is non-zero), and the map is made again, so star wings do not lift the
    background around bright stars (DES SE's sky). ``box`` shrinks to a quarter of the
    image's smaller side, at least 16."""
    import sep

    box = max(16, min(box, min(image.shape) // 4))
    data = np.ascontiguousarray(image, dtype=np.float32)
    masked = np.ascontiguousarray(mask != 0)
    first = sep.Background(data, mask=masked, bw=box, bh=box)
    objects = sep.extract(data - first.back(), 3.0, err=first.globalrms, mask=masked, minarea=5)
    grown = masked.copy()
    sep.mask_ellipse(
        grown, objects["x"], objects["y"], objects["a"], objects["b"], objects["theta"], r=4.0
    )
    background = sep.Background(data, mask=grown, bw=box, bh=box)
    return background.back(), float(background.globalrms)


def detect(
    image: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray,
    threshold: float,
    aperture_radius: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detections of a background-subtracted ``image`` above ``threshold`` times the
    per-pixel ``noise`` (pixels where ``mask`` is non-zero ignored): sep's object array,
    windowed centroids x, y (a Gaussian window of the object's own size, sqrt(a b)) and the
    flux in a circle of ``aperture_radius``. The light-weight pass of DES SE; :func:`extract`
    is the full catalogue."""
    import sep

    sep.set_extract_pixstack(2_000_000)
    data = np.ascontiguousarray(image, dtype=np.float32)
    objects = sep.extract(
        data,
        threshold,
        err=np.ascontiguousarray(noise, dtype=np.float32),
        mask=mask != 0,
        minarea=5,
        deblend_cont=0.005,
    )
    flux, _, _ = sep.sum_circle(data, objects["x"], objects["y"], aperture_radius)
    sigma = np.clip(np.sqrt(objects["a"] * objects["b"]), 0.8, 5.0)
    x, y = _window(data, objects["x"], objects["y"], sigma, None, max_shift=None)
    return objects, x, y, flux


def magnitudes(
    flux: np.ndarray, error: np.ndarray, zeropoint: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Magnitudes and their errors; NaN where the flux is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = flux > 0
        mag = np.where(positive, zeropoint - 2.5 * np.log10(np.where(positive, flux, 1.0)), np.nan)
        err = np.where(positive, 2.5 / np.log(10) * error / np.where(positive, flux, 1.0), np.nan)
    return mag, err
