"""Galaxy morphology: PSF-convolved Sersic fits and elliptical isophotes.

:func:`fit_sersic` fits one galaxy's cutout with a Sersic profile (astropy's ``Sersic2D``)
convolved with the PSF: the profile is evaluated on a grid ``oversample`` times finer than
the pixels within 2 r_eff of the centre (``OUTER`` times beyond it; the pixel containing
the centre, where an n = 4 profile is steepest, ``CORE`` times), averaged back onto the
pixels of a cutout padded by the PSF's radius, and convolved with the PSF
(``scipy.signal.fftconvolve``, mode ``'valid'``), so light scattered in from outside the
cutout is modelled. The model is parametrised by its total
flux (the analytic integral of the profile over the plane), so flux and magnitude come with
their uncertainties straight from the fit's covariance. A constant background is fitted
with it. Astropy's trust-region fitter (``TRFLSQFitter``) does the least squares, with the
weight map as inverse variances; pixels of zero weight (masked neighbours, bad pixels) do
not count.

:func:`isophote_photometry` runs photutils' ``Ellipse.fit_image`` (Jedrzejewski's
algorithm, as IRAF's ``ellipse``) and returns its table: per semi-major axis the mean
intensity, ellipticity, position angle and the curve of growth.

Angles are radians counter-clockwise from the +x axis, as both libraries use; positions
0-based pixels of the cutout; ellipticity is ``1 - b/a``. Imports numpy, scipy, astropy and
photutils only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Sub-pixels per pixel (per axis) of the pixel holding the profile's centre, and beyond
#: 2 r_eff from it.
CORE = 15
OUTER = 2
#: Source flags that only say a masked pixel is near (sep's 32, AWE's 1024).
MASKED_FLAGS = 32 | 1024
#: Fitted parameters in order, with the names the results use.
PARAMETERS = ("flux", "r_eff", "n", "x_0", "y_0", "ellip", "theta", "background")


def sersic_bn(n: Any) -> Any:
    """b_n such that half of a Sersic profile's light lies within r_eff."""
    from scipy.special import gammaincinv

    return gammaincinv(2.0 * np.asarray(n, float), 0.5)


def sersic_total_flux(amplitude: Any, r_eff: Any, n: Any, ellip: Any) -> Any:
    """Total flux over the plane of ``Sersic2D(amplitude, r_eff, n, ellip=...)``:
    2 pi n I_e r_e^2 (1 - e) exp(b_n) b_n^(-2n) Gamma(2n)."""
    from scipy.special import gamma

    n = np.asarray(n, float)
    bn = sersic_bn(n)
    return (
        2 * np.pi * n * np.asarray(amplitude, float) * np.asarray(r_eff, float) ** 2
        * (1 - np.asarray(ellip, float)) * np.exp(bn) * bn ** (-2 * n) * gamma(2 * n)
    )  # fmt: skip


def sersic_image(
    shape: tuple[int, int],
    flux: float,
    r_eff: float,
    n: float,
    x_0: float,
    y_0: float,
    ellip: float,
    theta: float,
    oversample: int = 5,
) -> np.ndarray:
    """A Sersic profile of total ``flux`` averaged over the pixels of an image of ``shape``
    (0-based pixel centres): sampled ``oversample`` times finer per axis within 2 r_eff of
    the centre, :data:`OUTER` times beyond (where the profile is smooth) and :data:`CORE`
    times in the pixel that holds the centre. The light beyond the image is not in it."""
    from astropy.modeling.models import Sersic2D

    amplitude = flux / sersic_total_flux(1.0, r_eff, n, ellip)

    def profile(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # Sersic2D's own formula, without building a model at each of the fit's calls
        return Sersic2D.evaluate(x, y, amplitude, r_eff, n, x_0, y_0, ellip, theta)

    ny, nx = shape
    image = pixel_means(profile, 0, 0, nx, ny, min(OUTER, oversample))
    cx, cy = int(np.rint(x_0)), int(np.rint(y_0))
    inner = int(np.ceil(2 * r_eff)) + 2
    x1, x2 = max(cx - inner, 0), min(cx + inner + 1, nx)
    y1, y2 = max(cy - inner, 0), min(cy + inner + 1, ny)
    if x1 < x2 and y1 < y2:
        image[y1:y2, x1:x2] = pixel_means(profile, x1, y1, x2 - x1, y2 - y1, oversample)
    if 0 <= cx < nx and 0 <= cy < ny:  # the cusp
        image[cy, cx] = pixel_means(profile, cx, cy, 1, 1, CORE)[0, 0]
    return image


def pixel_means(profile: Any, x0: int, y0: int, nx: int, ny: int, oversample: int) -> np.ndarray:
    """The mean of ``profile`` (a function of x, y arrays) over each pixel of the (ny, nx)
    box from pixel (x0, y0), on an ``oversample`` x ``oversample`` grid per pixel: one
    vectorised evaluation."""
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    xs = (np.arange(x0, x0 + nx)[:, None] + sub[None, :]).ravel()
    ys = (np.arange(y0, y0 + ny)[:, None] + sub[None, :]).ravel()
    values = profile(xs[None, :], ys[:, None])
    return values.reshape(ny, oversample, nx, oversample).mean(axis=(1, 3))


@dataclass(frozen=True)
class SersicFit:
    """A Sersic fit: parameters (``x``, ``y`` 0-based in the cutout; ``r_eff`` along the
    major axis in pixels; ``theta`` in [0, pi)), their 1-sigma ``errors`` by name, the
    magnitude ``-2.5 log10(flux) + zeropoint``, and the reduced chi^2 over ``dof``."""

    x: float
    y: float
    n: float
    r_eff: float
    ellipticity: float
    theta: float
    flux: float
    magnitude: float
    background: float
    chi2: float
    dof: int
    errors: dict[str, float] = field(default_factory=dict)
    message: str = ""

    def as_row(self) -> dict[str, float]:
        """Flat values and errors, for a table row."""
        row = {
            "x": self.x, "y": self.y, "n": self.n, "r_eff": self.r_eff,
            "ellipticity": self.ellipticity, "theta": self.theta, "flux": self.flux,
            "mag": self.magnitude, "background": self.background, "chi2": self.chi2,
        }  # fmt: skip
        names = {"x_0": "x", "y_0": "y", "ellip": "ellipticity"}
        for name, value in self.errors.items():
            row[f"{names.get(name, name)}_err"] = value
        row["mag_err"] = 2.5 / np.log(10) * self.errors.get("flux", np.nan) / self.flux
        return row


def _convolved_model(psf: np.ndarray, oversample: int, shape: tuple[int, int]):
    """An astropy model of the cutout's pixels (evaluated on its own full pixel grid):
    the Sersic profile on the cutout padded by the PSF's half-size, convolved with the PSF
    ('valid'), plus a constant."""
    from astropy.modeling import Fittable2DModel, Parameter
    from scipy.signal import fftconvolve

    pad_y, pad_x = psf.shape[0] // 2, psf.shape[1] // 2
    ny, nx = shape

    class ConvolvedSersic2D(Fittable2DModel):
        flux = Parameter(default=1.0, bounds=(0.0, None))
        r_eff = Parameter(default=3.0, bounds=(0.2, None))
        n = Parameter(default=2.0, bounds=(0.3, 8.0))
        x_0 = Parameter(default=0.0)
        y_0 = Parameter(default=0.0)
        ellip = Parameter(default=0.2, bounds=(0.0, 0.95))
        theta = Parameter(default=0.0)
        background = Parameter(default=0.0)

        @staticmethod
        def evaluate(x, y, flux, r_eff, n, x_0, y_0, ellip, theta, background):
            values = [float(np.ravel(v)[0]) for v in (flux, r_eff, n, x_0, y_0, ellip, theta)]
            flux_, r_eff_, n_, x0, y0, ellip_, theta_ = values
            padded = sersic_image(
                (ny + 2 * pad_y, nx + 2 * pad_x),
                flux_, r_eff_, n_, x0 + pad_x, y0 + pad_y, ellip_, theta_, oversample,
            )  # fmt: skip
            image = fftconvolve(padded, psf, mode="valid") + float(np.ravel(background)[0])
            return image.reshape(np.shape(x))

    return ConvolvedSersic2D


def _inside(model: Any) -> Any:
    """The model with each bounded parameter moved just inside its bounds (the fitter
    refuses a start on or beyond one, as a previous fit can end)."""
    for name in model.param_names:
        parameter = getattr(model, name)
        low, high = parameter.bounds
        span = abs(parameter.value) * 1e-6 + 1e-9
        if low is not None and parameter.value <= low:
            parameter.value = low + span
        if high is not None and parameter.value >= high:
            parameter.value = high - span
    return model


def _at_bound(parameter: Any) -> bool:
    low, high = parameter.bounds
    span = abs(parameter.value) * 1e-4 + 1e-6
    return (low is not None and parameter.value <= low + span) or (
        high is not None and parameter.value >= high - span
    )


def initial_guess(cutout: np.ndarray, weight: np.ndarray) -> dict[str, float]:
    """Starting values from the cutout's light: background from the border, centre and
    shape from second moments, r_eff from the circular half-light radius, total flux."""
    ny, nx = cutout.shape
    border = np.zeros(cutout.shape, bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    good = weight > 0
    background = float(np.median(cutout[border & good])) if (border & good).any() else 0.0
    light = np.where(good, cutout - background, 0.0)
    light = np.clip(light, 0, None)
    total = light.sum()
    if not total > 0:
        raise ValueError("no light above the background in the cutout")
    y, x = np.mgrid[0:ny, 0:nx]
    x0, y0 = (light * x).sum() / total, (light * y).sum() / total
    dx, dy = x - x0, y - y0
    near = np.hypot(dx, dy) < min(nx, ny) / 4
    inner = light * near
    xx, yy = (inner * dx * dx).sum() / inner.sum(), (inner * dy * dy).sum() / inner.sum()
    xy = (inner * dx * dy).sum() / inner.sum()
    half = np.sqrt(((xx - yy) / 2) ** 2 + xy**2)
    major, minor = (xx + yy) / 2 + half, max((xx + yy) / 2 - half, 1e-6)
    radius = np.hypot(dx, dy).ravel()
    order = np.argsort(radius)
    cumulative = np.cumsum(light.ravel()[order])
    r_half = float(radius[order][np.searchsorted(cumulative, cumulative[-1] / 2)])
    return {
        "flux": float(total),
        "r_eff": max(r_half, 1.0),
        "n": 2.0,
        "x_0": float(x0),
        "y_0": float(y0),
        "ellip": float(np.clip(1 - np.sqrt(minor / major), 0.0, 0.8)),
        "theta": float(0.5 * np.arctan2(2 * xy, xx - yy)),
        "background": background,
    }


def fit_sersic(
    cutout: np.ndarray,
    weight: np.ndarray,
    psf: np.ndarray,
    *,
    oversample: int = 5,
    zeropoint: float = 0.0,
    guess: dict[str, float] | None = None,
    gain: float | None = None,
    maxiter: int = 200,
) -> SersicFit:
    """Fit a PSF-convolved Sersic profile and a constant to ``cutout``.

    ``weight`` is the inverse variance of each pixel (0: ignored); ``psf`` an odd-sized
    image of the PSF at the pixels' scale (normalised here to sum 1); ``guess`` overrides
    starting values by parameter name (:data:`PARAMETERS`). With ``gain`` (electrons per
    unit of the cutout) the galaxy's own photon noise is added to the variance of the
    first fit's model and the fit is made again from it (a bright galaxy's centre is then
    not over-weighted). The reduced chi^2 is over the pixels of non-zero weight; the
    errors are the square roots of the covariance's diagonal (astropy's, scaled by the
    reduced chi^2)."""
    import warnings

    from astropy.modeling import fitting
    from astropy.utils.exceptions import AstropyUserWarning

    data = np.asarray(cutout, float)
    weight = np.where(np.isfinite(data), np.asarray(weight, float), 0.0)
    data = np.where(weight > 0, data, 0.0)
    kernel = np.asarray(psf, float)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"the PSF must be a 2-d image of odd size, got {kernel.shape}")
    kernel = kernel / kernel.sum()
    start = initial_guess(data, weight) | dict(guess or {})
    size = min(data.shape)
    model = _convolved_model(kernel, oversample, data.shape)(**start)
    model.r_eff.bounds = (0.2, 2.0 * size)
    model.x_0.bounds = (start["x_0"] - size / 4, start["x_0"] + size / 4)
    model.y_0.bounds = (start["y_0"] - size / 4, start["y_0"] + size / 4)
    y, x = np.mgrid[0 : data.shape[0], 0 : data.shape[1]]
    fitter = fitting.TRFLSQFitter(calc_uncertainties=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        fitted = fitter(_inside(model), x, y, data, weights=np.sqrt(weight), maxiter=maxiter)
        if gain:
            light = np.clip(fitted(x, y) - fitted.background.value, 0, None) / gain
            good = weight > 0
            weight = np.where(good, 1 / (1 / np.where(good, weight, 1.0) + light), 0.0)
            fitted = fitter(_inside(fitted), x, y, data, weights=np.sqrt(weight), maxiter=maxiter)
    at_bound = [name for name in PARAMETERS if _at_bound(getattr(fitted, name))]
    residual = (data - fitted(x, y)) ** 2 * weight
    dof = max(int((weight > 0).sum()) - len(PARAMETERS), 1)
    chi2 = float(residual.sum() / dof)
    stds = fitted.stds
    errors = {
        name: float(value) if value is not None else float("nan")
        for name, value in zip(stds.param_names, stds.stds, strict=True)
    } if stds is not None else {name: float("nan") for name in PARAMETERS}  # fmt: skip
    flux = float(fitted.flux.value)
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = float(-2.5 * np.log10(flux) + zeropoint) if flux > 0 else float("nan")
    return SersicFit(
        x=float(fitted.x_0.value),
        y=float(fitted.y_0.value),
        n=float(fitted.n.value),
        r_eff=float(fitted.r_eff.value),
        ellipticity=float(fitted.ellip.value),
        theta=float(np.mod(fitted.theta.value, np.pi)),
        flux=flux,
        magnitude=magnitude,
        background=float(fitted.background.value),
        chi2=chi2,
        dof=dof,
        errors=errors,
        message="; ".join(
            [str(w.message) for w in caught] + [f"{name} at its bound" for name in at_bound]
        ),
    )


def isophote_photometry(
    cutout: np.ndarray,
    *,
    x: float | None = None,
    y: float | None = None,
    sma: float | None = None,
    ellipticity: float | None = None,
    pa: float | None = None,
    mask: np.ndarray | None = None,
    maxsma: float | None = None,
    step: float = 0.1,
) -> Any:
    """Elliptical isophotes of a galaxy (photutils ``Ellipse.fit_image``) as an astropy
    Table: ``sma``, ``intens``, ``intens_err``, ``ellipticity``, ``ellipticity_err``,
    ``pa`` and ``pa_err`` (radians, from +x, counter-clockwise), ``x0``, ``y0``,
    ``tflux_e`` (the curve of growth: flux inside each ellipse), ``npix_e`` and
    ``stop_code``. The cutout should have its background removed. The first ellipse is
    centred on (x, y) with semi-major axis ``sma``, ``ellipticity`` and ``pa``; those not
    given come from the light's second moments (:func:`initial_guess`), and if no
    isophote fits, the first ellipse is tried at half and twice its size. Pixels where
    ``mask`` is True are left out. An empty table when no isophote could be fitted."""
    from astropy.table import Table
    from photutils.isophote import Ellipse, EllipseGeometry

    data = np.asarray(cutout, float)
    good = np.ones(data.shape, bool) if mask is None else ~np.asarray(mask, bool)
    moments = initial_guess(data, good.astype(float))
    if mask is not None:
        data = np.ma.masked_array(data, mask=~good)
    ny, nx = data.shape
    first = sma if sma is not None else max(moments["r_eff"], 2.0)
    isophotes: Any = []
    for size in (first, first / 2, first * 2):
        geometry = EllipseGeometry(
            x0=moments["x_0"] if x is None else x,
            y0=moments["y_0"] if y is None else y,
            sma=size,
            eps=max(moments["ellip"], 0.05) if ellipticity is None else ellipticity,
            pa=moments["theta"] if pa is None else pa,
        )
        isophotes = Ellipse(data, geometry=geometry).fit_image(
            maxsma=maxsma if maxsma is not None else min(nx, ny) / 2 - 1, step=step
        )
        if len(isophotes):
            break
    columns = ("sma", "intens", "int_err", "eps", "ellip_err", "pa", "pa_err", "x0", "y0")
    extra = ("tflux_e", "npix_e", "stop_code")
    if len(isophotes) == 0:
        names = [*columns, *extra]
        return Table(names=_renamed(names), dtype=[float] * (len(names) - 1) + [int])
    table = Table([np.asarray(getattr(isophotes, c), float) for c in columns], names=columns)
    for name in extra:
        table[name] = np.asarray(getattr(isophotes, name))
    table.rename_columns(list(table.colnames), _renamed(table.colnames))
    table["pa"] = np.mod(table["pa"], np.pi)
    return table


def _renamed(names: Any) -> list[str]:
    rename = {"int_err": "intens_err", "eps": "ellipticity", "ellip_err": "ellipticity_err"}
    return [rename.get(n, n) for n in names]


def neighbour_mask(
    shape: tuple[int, int],
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    theta: np.ndarray,
    scale: float = 3.0,
) -> np.ndarray:
    """True inside the ellipses ``scale`` * (a, b) at angle theta around each (x, y): the
    other sources of a cutout, left out of a fit. One pass over the sources' arrays."""
    ny, nx = shape
    if np.size(x) == 0:
        return np.zeros(shape, bool)
    yy, xx = np.mgrid[0:ny, 0:nx]
    dx = xx[None] - np.asarray(x, float)[:, None, None]
    dy = yy[None] - np.asarray(y, float)[:, None, None]
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    major = np.maximum(scale * np.asarray(a, float), 1.5)[:, None, None]
    minor = np.maximum(scale * np.asarray(b, float), 1.5)[:, None, None]
    inside = ((dx * c + dy * s) / major) ** 2 + ((-dx * s + dy * c) / minor) ** 2 <= 1
    return inside.any(axis=0)


def frame_psf(
    image: np.ndarray,
    sources: dict[str, np.ndarray],
    radius: int,
    *,
    min_snr: float = 20.0,
    max_stars: int = 40,
) -> tuple[np.ndarray, dict[str, float]]:
    """A noise-free PSF for a frame: the stack of its bright, clean, isolated point-like
    sources, the sky level removed (:func:`awe.science.des_psf.build_psf`), fitted with a
    Moffat profile (:func:`~awe.science.des_psf.fit_moffat`), as a (2r+1)^2 stamp of unit
    sum, and the profile (``fwhm``, ``beta``, the number of ``stars`` and their median
    half-light radius ``flux_radius``). ``sources`` has the columns of
    :mod:`awe.science.sources`. Stars are the sources of S/N above ``min_snr`` whose
    peak-to-flux ratio is the usual one among those, with flags at most 1 (a neighbour)
    and no neighbour of more than 5 % of their flux within ``radius``. Fewer than 3 is a
    ValueError."""
    from awe.science.des_psf import build_psf, fit_moffat, moffat
    from awe.science.pixels import robust_background

    x, y = np.asarray(sources["x"], float), np.asarray(sources["y"], float)
    ny, nx = image.shape
    inside = (x > radius + 2) & (x < nx - radius - 3) & (y > radius + 2) & (y < ny - radius - 3)
    distance = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(distance, np.inf)
    flux = np.asarray(sources["flux_auto"], float)
    brighter = flux[None, :] > 0.05 * flux[:, None]  # a neighbour that would show
    isolated = ~((distance < radius) & brighter).any(axis=1)
    stellar = point_sources(sources, min_snr)
    clean = np.asarray(sources["flags"]) <= 1  # a neighbour's light, at most
    chosen = np.flatnonzero(inside & isolated & stellar & clean)
    chosen = chosen[np.argsort(-np.asarray(sources["flux_auto"])[chosen])][:max_stars]
    level, _rms = robust_background(image)  # each star's scale must not include the sky
    profile = fit_moffat(build_psf(image - level, x[chosen], y[chosen], radius))
    stamp = moffat(radius, profile["fwhm"], profile["beta"])
    radius_of_stars = float(np.median(np.asarray(sources["flux_radius"])[chosen]))
    return stamp / stamp.sum(), profile | {
        "stars": int(chosen.size),
        "flux_radius": radius_of_stars,
    }


def point_sources(sources: dict[str, np.ndarray], min_snr: float = 20.0) -> np.ndarray:
    """True for the sources of Kron S/N above ``min_snr`` whose peak-to-flux ratio is the
    usual one among those (:func:`awe.science.photometry.point_like`): the usual ratio
    is taken over bright sources only, as noise peaks, many on a coadd, have their own."""
    from awe.science.photometry import point_like

    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.asarray(sources["flux_auto"]) / np.asarray(sources["fluxerr_auto"])
    bright = np.flatnonzero(snr > min_snr)
    stellar = np.zeros(snr.size, bool)
    if bright.size:
        peak, flux = np.asarray(sources["peak"])[bright], np.asarray(sources["flux_aper"])[bright]
        stellar[bright] = point_like(peak, flux, 0.85, 1.2)
    return stellar


def star_radius(sources: dict[str, np.ndarray], min_snr: float = 20.0) -> float:
    """The median half-light radius of the clean (flags <= 1) point sources; NaN if none."""
    stars = point_sources(sources, min_snr) & (np.asarray(sources["flags"]) <= 1)
    return float(np.median(np.asarray(sources["flux_radius"])[stars])) if stars.any() else np.nan


def select_galaxies(
    sources: dict[str, np.ndarray],
    stars_radius: float | None = None,
    *,
    min_snr: float = 50.0,
    min_size: float = 1.5,
    max_flags: int = 3,
) -> np.ndarray:
    """Indices of the sources bright enough (Kron S/N >= ``min_snr``) and larger than a
    star: half-light radius at least ``min_size`` times ``stars_radius`` (the stars'
    half-light radius; default :func:`star_radius`) and a peak-to-flux ratio below 0.8
    times the point sources'; flags at most ``max_flags`` once the masked-pixel flags (32,
    1024) are left aside (a fit ignores masked pixels); brightest first."""
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.asarray(sources["flux_auto"]) / np.asarray(sources["fluxerr_auto"])
        ratio = np.asarray(sources["peak"], float) / np.asarray(sources["flux_aper"], float)
    stars = point_sources(sources)
    typical = np.nanmedian(ratio[stars]) if stars.any() else np.inf
    radius = star_radius(sources) if stars_radius is None else stars_radius
    extended = np.asarray(sources["flux_radius"]) >= min_size * radius
    extended &= ratio < 0.8 * typical
    flags = np.asarray(sources["flags"]) & ~MASKED_FLAGS
    chosen = np.flatnonzero((snr >= min_snr) & extended & (flags <= max_flags))
    return chosen[np.argsort(-np.asarray(sources["flux_auto"])[chosen])]


def galaxy_cutout(
    image: np.ndarray,
    inverse_variance: np.ndarray,
    sources: dict[str, np.ndarray],
    index: int,
    half_size: int,
    mask_scale: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """A (2h+1)^2 cutout of source ``index`` and its inverse variance, the other sources
    in it masked (weight 0); and the frame pixel of the cutout's (0, 0). Outside the frame
    the weight is 0. A neighbour is masked within ``mask_scale`` times its (a, b), grown
    by sqrt(ln(peak / noise)), so that a bright star's wings go with it: for a Gaussian of
    rms a, the radius where its light falls to the noise."""
    from awe.science.des_psf import cut_stamps

    x, y = np.asarray(sources["x"], float), np.asarray(sources["y"], float)
    cx, cy = int(np.rint(x[index])), int(np.rint(y[index]))
    data = cut_stamps(image, x[index : index + 1], y[index : index + 1], half_size)[0]
    weight = cut_stamps(inverse_variance, x[index : index + 1], y[index : index + 1], half_size)
    weight = weight[0].astype(float)
    ox, oy = cx - half_size, cy - half_size
    others = np.flatnonzero((np.abs(x - cx) < half_size + 20) & (np.abs(y - cy) < half_size + 20))
    others = others[others != index]
    good = weight[weight > 0]
    noise = 1 / np.sqrt(np.median(good)) if good.size else 1.0
    peak = np.asarray(sources["peak"], float)[others]
    grow = np.sqrt(np.log(np.maximum(np.nan_to_num(peak / noise), np.e)))
    masked = neighbour_mask(
        data.shape, x[others] - ox, y[others] - oy,
        np.asarray(sources["a"])[others] * grow, np.asarray(sources["b"])[others] * grow,
        np.asarray(sources["theta"])[others], mask_scale,
    )  # fmt: skip
    weight[masked] = 0.0
    return data.astype(float), weight, (ox, oy)


def model_image(
    fit: SersicFit, shape: tuple[int, int], psf: np.ndarray, oversample: int = 5
) -> np.ndarray:
    """The fitted model (PSF-convolved profile plus background) on a cutout of ``shape``,
    as :func:`fit_sersic` made it: for residual maps, ``cutout - model_image(...)``."""
    kernel = np.asarray(psf, float) / np.sum(psf)
    model = _convolved_model(kernel, oversample, shape)(
        flux=fit.flux, r_eff=fit.r_eff, n=fit.n, x_0=fit.x, y_0=fit.y,
        ellip=fit.ellipticity, theta=fit.theta, background=fit.background,
    )  # fmt: skip
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    return model(x, y)
