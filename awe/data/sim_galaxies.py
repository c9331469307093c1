"""Simulated galaxies: Sersic profiles on the sky, drawn into science exposures.

Off unless the plan asks (``simulate_night(..., galaxies=3)`` or ``plan={'galaxies':
{'per_chip': 3}}``), so that nights made without them keep their bytes and their truth.
Each science field gets ``per_chip`` galaxies on every working chip, spread along the
chip's long axis so that they do not overlap, with a Sersic index, effective radius
(arcsec, along the major axis), ellipticity ``1 - b/a``, position angle (degrees east of
north) and magnitude (the same in every filter) drawn from the plan's ranges. They are
fixed on the sky: each dither sees them at its own pixels.

An exposure draws a galaxy in the pixel frame of its chip: centre, major-axis direction
and scale come from the chip's true WCS at the galaxy's position, so the truth written
beside the exposure (``chips.<chip>.galaxies``: x, y 0-based raw pixels, ``r_eff``
pixels, ``theta`` radians from +x counter-clockwise, ``ellipticity``, ``n``, total
``flux_adu``) is exactly what was drawn. The profile is astropy's ``Sersic2D`` whose
amplitude gives the total flux (the integral over the plane; its own formula, not the
fitter's), sampled 9 x 9 per pixel within 2 r_eff of the centre, 3 x 3 beyond and 27 x 27
in the central pixel, convolved with the exposure's Moffat PSF, within a stamp of 10 r_eff
plus 4 FWHM; light beyond the stamp (a few per cent of an n = 4 profile) is not drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from awe.data import sim_sky
from awe.data.instruments import Instrument

#: What the plan's ``galaxies`` section may set, and its defaults.
DEFAULTS: dict[str, Any] = {
    "per_chip": 0,
    "mag_range": [17.5, 19.0],
    "n_range": [0.8, 4.0],
    "r_eff_arcsec_range": [1.0, 2.2],
    "ellipticity_range": [0.15, 0.6],
}
OVERSAMPLE = 9  # within 2 r_eff of the centre
OUTER_OVERSAMPLE = 3  # beyond, where the profile is smooth
CORE = 27
MAX_STAMP = 160


def galaxy_plan(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's ``galaxies`` section over :data:`DEFAULTS`."""
    return DEFAULTS | dict(plan.get("galaxies") or {})


def galaxy_catalogue(
    instrument: Instrument, fields: Sequence[tuple[float, float]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """The galaxies of every science field: id, ra, dec, mag, n, r_eff_arcsec,
    ellipticity, pa_deg (east of north). Empty arrays when the plan has none."""
    plan = galaxy_plan(instrument.simulation)
    per_chip = int(plan["per_chip"])
    x0, y0, nx, ny = sim_sky.data_origin(instrument)
    ra, dec = [], []
    for field in fields:
        for chip in instrument.working_chips:
            cards = sim_sky.chip_wcs_cards(instrument, chip, *field)
            slots = (np.arange(per_chip) + rng.uniform(0.35, 0.65, per_chip)) / max(per_chip, 1)
            long_y = ny >= nx  # spread along the chip's long axis
            along = (slots * (ny if long_y else nx)) + (y0 if long_y else x0)
            across = rng.uniform(0.35, 0.65, per_chip) * (nx if long_y else ny)
            across += x0 if long_y else y0
            x, y = (across, along) if long_y else (along, across)
            r, d = sim_sky.pixel_to_sky(cards, x, y)
            ra.append(np.atleast_1d(r))
            dec.append(np.atleast_1d(d))
    count = int(sum(r.size for r in ra))

    def draw(key: str) -> np.ndarray:
        low, high = plan[key]
        return rng.uniform(low, high, count)

    return {
        "id": np.arange(count),
        "ra": np.concatenate(ra) if ra else np.empty(0),
        "dec": np.concatenate(dec) if dec else np.empty(0),
        "mag": draw("mag_range"),
        "n": draw("n_range"),
        "r_eff_arcsec": draw("r_eff_arcsec_range"),
        "ellipticity": draw("ellipticity_range"),
        "pa_deg": rng.uniform(0.0, 180.0, count),
    }


def catalogue_truth(catalogue: Mapping[str, np.ndarray]) -> list[dict[str, float]]:
    """The catalogue as the night's truth records it."""
    names = ("ra", "dec", "mag", "n", "r_eff_arcsec", "ellipticity", "pa_deg")
    return [
        {"id": int(i), **{k: round(float(catalogue[k][j]), 7) for k in names}}
        for j, i in enumerate(catalogue["id"])
    ]


def chip_galaxies(
    cards: Mapping[str, Any],
    catalogue: Mapping[str, np.ndarray],
    flux: np.ndarray,
    origin: tuple[int, int, int, int],
) -> dict[str, list[float]]:
    """The galaxies whose centres fall on a chip, in its pixel frame (0-based raw pixels):
    centre, r_eff (pixels), theta (radians from +x), through the chip's true WCS."""
    x0, y0, nx, ny = origin
    if catalogue["ra"].size == 0:
        return {}
    x, y = sim_sky.sky_to_pixel(dict(cards), catalogue["ra"], catalogue["dec"])
    inside = (x >= x0) & (x < x0 + nx - 1) & (y >= y0) & (y < y0 + ny - 1)
    if not inside.any():
        return {}
    index = np.flatnonzero(inside)
    x, y = x[index], y[index]
    # one arcsec along the major axis (position angle east of north), through the WCS
    pa = np.radians(catalogue["pa_deg"][index])
    dec = np.radians(catalogue["dec"][index])
    step = 1.0 / 3600.0
    ra_end = catalogue["ra"][index] + step * np.sin(pa) / np.cos(dec)
    dec_end = catalogue["dec"][index] + step * np.cos(pa)
    xe, ye = sim_sky.sky_to_pixel(dict(cards), ra_end, dec_end)
    pixels_per_arcsec = np.hypot(xe - x, ye - y)
    return {
        "id": catalogue["id"][index].tolist(),
        "x": np.round(x, 4).tolist(),
        "y": np.round(y, 4).tolist(),
        "flux_adu": np.round(flux[index], 3).tolist(),
        "mag": np.round(catalogue["mag"][index], 4).tolist(),
        "n": np.round(catalogue["n"][index], 4).tolist(),
        "r_eff": np.round(catalogue["r_eff_arcsec"][index] * pixels_per_arcsec, 4).tolist(),
        "ellipticity": np.round(catalogue["ellipticity"][index], 4).tolist(),
        "theta": np.round(np.mod(np.arctan2(ye - y, xe - x), np.pi), 5).tolist(),
    }


def render(
    image: np.ndarray,
    galaxies: Mapping[str, list[float]],
    x0: int,
    y0: int,
    fwhm: float,
    beta: float,
) -> None:
    """Add the galaxies to a data-section image whose pixel (0, 0) is raw pixel (x0, y0).
    A few galaxies per chip: one vectorised stamp each."""
    from astropy.modeling.models import Sersic2D
    from scipy.signal import fftconvolve
    from scipy.special import gamma, gammaincinv

    from awe.science.galaxies import pixel_means

    psf = _moffat(fwhm, beta)
    ny, nx = image.shape
    keys = ("x", "y", "flux_adu", "n", "r_eff", "ellipticity", "theta")
    for x, y, flux, n, r_eff, ellip, theta in zip(
        *(galaxies.get(k, []) for k in keys), strict=True
    ):
        radius = int(min(np.ceil(10 * r_eff + 4 * fwhm), MAX_STAMP))
        cx, cy = int(np.rint(x)) - x0, int(np.rint(y)) - y0
        bn = gammaincinv(2 * n, 0.5)
        unit = 2 * np.pi * n * r_eff**2 * (1 - ellip) * np.exp(bn) * bn ** (-2 * n) * gamma(2 * n)
        # the profile in stamp pixels, centred at the galaxy's offset from the stamp centre
        dx, dy = x - x0 - cx + radius, y - y0 - cy + radius
        profile = Sersic2D(flux / unit, r_eff, n, dx, dy, ellip, theta)
        stamp = pixel_means(profile, 0, 0, 2 * radius + 1, 2 * radius + 1, OUTER_OVERSAMPLE)
        ix, iy = int(np.rint(dx)), int(np.rint(dy))
        inner = int(min(np.ceil(2 * r_eff) + 2, radius))  # where the profile is steep
        box = (slice(iy - inner, iy + inner + 1), slice(ix - inner, ix + inner + 1))
        stamp[box] = pixel_means(
            profile, ix - inner, iy - inner, 2 * inner + 1, 2 * inner + 1, OVERSAMPLE
        )
        stamp[iy, ix] = pixel_means(profile, ix, iy, 1, 1, CORE)[0, 0]
        stamp = fftconvolve(stamp, psf, mode="same")
        rows = slice(max(cy - radius, 0), min(cy + radius + 1, ny))
        cols = slice(max(cx - radius, 0), min(cx + radius + 1, nx))
        image[rows, cols] += stamp[
            rows.start - (cy - radius) : rows.stop - (cy - radius),
            cols.start - (cx - radius) : cols.stop - (cx - radius),
        ]


def _moffat(fwhm: float, beta: float) -> np.ndarray:
    """The stars' Moffat profile sampled at pixel centres within 6 FWHM, summing to 1."""
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    radius = int(np.ceil(6 * fwhm))
    grid = np.arange(-radius, radius + 1)
    kernel = (1 + (grid[None, :] ** 2 + grid[:, None] ** 2) / alpha**2) ** (-beta)
    return kernel / kernel.sum()
