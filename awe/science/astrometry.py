"""Astrometric calibration of one CCD against a reference catalogue.

1. Sources (pixels) and reference stars (sky) meet in pixel space through the frame's
   first-guess WCS (the telescope's pointing: off by arcseconds, and without distortion).
2. The shift between the two is the peak of the histogram of all source-star offsets
   within ``search_radius``: robust to missing and spurious stars on either side.
3. After the shift, each source is paired with the nearest star within ``match_radius``
   (one-to-one), and a TAN-SIP WCS is fitted to the pairs (astropy's
   ``fit_wcs_from_points``); residuals beyond 3 sigma are clipped and the pairing done
   again with the new solution, a few times.

The SIP degree drops with the number of pairs (degree 3 needs many stars), so a sparse
chip gets a stable plain TAN rather than an overfitted polynomial. The result carries the
rms of the residuals (arcsec, both axes together) and the number of stars used.

DES SE's solver (:func:`solve_tan_sip`) lives here too: it matches in sky coordinates
(:func:`pointing_offset`, :func:`nearest_match`), fits TAN-SIP by linear least squares
(:func:`fit_tan_sip`) and hands the WCS on as FITS cards (:func:`pixel_to_sky`); the
gnomonic projection both use is :func:`tangent_plane`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITERATIONS = 4


@dataclass
class Solution:
    """A fitted WCS and how well it fits."""

    wcs: object  # astropy.wcs.WCS
    rms_arcsec: float
    n_stars: int
    shift_pixels: tuple[float, float]
    sip_degree: int | None
    source_index: np.ndarray  # the pairs used: indices into the sources ...
    reference_index: np.ndarray  # ... and into the reference stars


class AstrometryError(ValueError):
    """Too few stars to solve, with what was found."""


def sip_degree_for(n_pairs: int, wanted: int | None) -> int | None:
    """The highest SIP degree up to ``wanted`` that ``n_pairs`` constrain well."""
    for degree, needed in ((3, 60), (2, 25)):
        if wanted is not None and degree <= wanted and n_pairs >= needed:
            return degree
    return None


def offset_peak(
    x: np.ndarray, y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, search_radius: float
) -> tuple[float, float, int]:
    """The (dx, dy) from sources to stars most pairs agree on, and how many agree."""
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([ref_x, ref_y]))
    pairs = tree.query_ball_point(np.column_stack([x, y]), search_radius)
    dx = np.concatenate([ref_x[p] - xi for xi, p in zip(x, pairs, strict=True)] or [[]])
    dy = np.concatenate([ref_y[p] - yi for yi, p in zip(y, pairs, strict=True)] or [[]])
    if dx.size == 0:
        return 0.0, 0.0, 0
    bins = np.arange(-search_radius, search_radius + 2.0, 2.0)
    counts, xedges, yedges = np.histogram2d(dx, dy, bins=[bins, bins])
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    cx, cy = (xedges[i] + xedges[i + 1]) / 2, (yedges[j] + yedges[j + 1]) / 2
    near = np.hypot(dx - cx, dy - cy) < 3.0
    return float(np.median(dx[near])), float(np.median(dy[near])), int(near.sum())


def pair_up(
    x: np.ndarray, y: np.ndarray, ref_x: np.ndarray, ref_y: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one nearest pairs within ``radius`` (a star claimed twice keeps the nearer)."""
    from scipy.spatial import cKDTree

    if len(ref_x) == 0 or len(x) == 0:
        return np.empty(0, int), np.empty(0, int)
    distance, nearest = cKDTree(np.column_stack([ref_x, ref_y])).query(
        np.column_stack([x, y]), distance_upper_bound=radius
    )
    found = np.flatnonzero(np.isfinite(distance))
    order = found[np.argsort(distance[found])]
    _, first = np.unique(nearest[order], return_index=True)
    chosen = np.sort(order[first])
    return chosen, nearest[chosen]


# ---- TAN-SIP by linear least squares on FITS cards (DES SE's SCAMP step) ----
# The standalone solver of the DES single-epoch pipeline: it works in sky coordinates
# (arcsec radii) from any first-guess mapping and returns the WCS as FITS cards.


def tangent_plane(ra, dec, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (TAN) projection of (ra, dec) about (ra0, dec0): standard coordinates
    (xi, eta) in degrees."""
    ra, dec = np.radians(np.asarray(ra, float)), np.radians(np.asarray(dec, float))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cos_c = np.sin(d0) * np.sin(dec) + np.cos(d0) * np.cos(dec) * np.cos(ra - a0)
    xi = np.cos(dec) * np.sin(ra - a0) / cos_c
    eta = (np.cos(d0) * np.sin(dec) - np.sin(d0) * np.cos(dec) * np.cos(ra - a0)) / cos_c
    return np.degrees(xi), np.degrees(eta)


def from_tangent_plane(xi, eta, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`tangent_plane`: (ra, dec) in degrees."""
    x, y = np.radians(np.asarray(xi, float)), np.radians(np.asarray(eta, float))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(
            np.cos(c) * np.sin(d0) + np.where(rho > 0, y * np.sin(c) * np.cos(d0) / rho, 0)
        )
        ra = a0 + np.arctan2(
            x * np.sin(c), rho * np.cos(d0) * np.cos(c) - y * np.sin(d0) * np.sin(c)
        )
    return np.degrees(ra) % 360.0, np.degrees(dec)


def nearest_match(
    ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray, radius_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """For each position, the index of the nearest reference star within ``radius_arcsec``
    (-1 if none) and the separation in arcsec. Small-angle, vectorised in chunks."""
    index = np.full(np.size(ra), -1, dtype=np.int64)
    distance = np.full(np.size(ra), np.inf)
    if np.size(ra) == 0 or np.size(ref_ra) == 0:
        return index, distance
    cos_dec = np.cos(np.radians(np.median(ref_dec)))
    for start in range(0, np.size(ra), 2048):
        dra = (np.asarray(ra[start : start + 2048])[:, None] - ref_ra[None, :] + 180) % 360 - 180
        ddec = np.asarray(dec[start : start + 2048])[:, None] - ref_dec[None, :]
        d2 = (dra * cos_dec) ** 2 + ddec**2
        best = np.argmin(d2, axis=1)
        sep = np.sqrt(d2[np.arange(best.size), best]) * 3600
        index[start : start + best.size] = np.where(sep <= radius_arcsec, best, -1)
        distance[start : start + best.size] = sep
    return index, distance


def polynomial_terms(
    u: np.ndarray, v: np.ndarray, degree: int
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The powers (p, q) of a 2-d polynomial of total ``degree`` and its design matrix
    (``u**p * v**q`` along the last axis), constant term first."""
    powers = [(p, q) for p in range(degree + 1) for q in range(degree + 1 - p)]
    return powers, np.stack([u**p * v**q for p, q in powers], -1)


def fit_tan_sip(
    x: np.ndarray,
    y: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    crpix: tuple[float, float],
    crval: tuple[float, float],
    degree: int = 3,
) -> dict[str, object]:
    """A TAN-SIP WCS (FITS cards) mapping 1-based pixels ``x, y`` to ``ra, dec``.

    Standard coordinates about ``crval`` are fitted as polynomials of (u, v) = pixel -
    ``crpix``; the linear terms are the CD matrix and the rest, taken back through CD's
    inverse, are the SIP A/B coefficients. The constant terms move CRVAL, and the fit is
    repeated until they vanish."""
    u, v = np.asarray(x, float) - crpix[0], np.asarray(y, float) - crpix[1]
    powers, design = polynomial_terms(u, v, degree)
    crval = (float(crval[0]), float(crval[1]))
    for _ in range(4):
        xi, eta = tangent_plane(ra, dec, *crval)
        cx, *_ = np.linalg.lstsq(design, xi, rcond=None)
        cy, *_ = np.linalg.lstsq(design, eta, rcond=None)
        if max(abs(cx[0]), abs(cy[0])) < 1e-10:
            break
        crval = tuple(float(c) for c in from_tangent_plane(cx[0], cy[0], *crval))
    where = {pq: i for i, pq in enumerate(powers)}
    cd = np.array([[cx[where[1, 0]], cx[where[0, 1]]], [cy[where[1, 0]], cy[where[0, 1]]]])
    inverse = np.linalg.inv(cd)
    cards: dict[str, object] = {
        "CTYPE1": "RA---TAN-SIP",
        "CTYPE2": "DEC--TAN-SIP",
        "CRPIX1": float(crpix[0]),
        "CRPIX2": float(crpix[1]),
        "CRVAL1": crval[0],
        "CRVAL2": crval[1],
        "CD1_1": float(cd[0, 0]),
        "CD1_2": float(cd[0, 1]),
        "CD2_1": float(cd[1, 0]),
        "CD2_2": float(cd[1, 1]),
        "CUNIT1": "deg",
        "CUNIT2": "deg",
        "RADESYS": "ICRS",
        "A_ORDER": degree,
        "B_ORDER": degree,
    }
    for (p, q), i in where.items():
        if p + q >= 2:
            a, b = inverse @ np.array([cx[i], cy[i]])
            cards[f"A_{p}_{q}"] = float(a)
            cards[f"B_{p}_{q}"] = float(b)
    return cards


def pixel_to_sky(
    cards: dict[str, object], x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply TAN-SIP cards (as :func:`fit_tan_sip` writes them) to 1-based pixels."""
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    u, v = x - cards["CRPIX1"], y - cards["CRPIX2"]
    du, dv = np.zeros_like(u), np.zeros_like(v)
    for key, value in cards.items():
        if key.startswith("A_") and key != "A_ORDER":
            p, q = (int(n) for n in key.split("_")[1:])
            du += value * u**p * v**q
        elif key.startswith("B_") and key != "B_ORDER":
            p, q = (int(n) for n in key.split("_")[1:])
            dv += value * u**p * v**q
    u, v = u + du, v + dv
    xi = cards["CD1_1"] * u + cards["CD1_2"] * v
    eta = cards["CD2_1"] * u + cards["CD2_2"] * v
    return from_tangent_plane(xi, eta, cards["CRVAL1"], cards["CRVAL2"])


def pointing_offset(
    ra: np.ndarray, dec: np.ndarray, ref_ra: np.ndarray, ref_dec: np.ndarray, search_arcsec: float
) -> tuple[float, float]:
    """The shift (degrees) that best lays detections on reference stars: the peak of the
    histogram of every detection-reference offset within ``search_arcsec`` (0.5" bins),
    refined by the median of the offsets within 1" of the peak. Robust where stars are
    closer together than the pointing error, unlike nearest-neighbour offsets."""
    cos_dec = np.cos(np.radians(np.median(dec)))
    dra = ((ref_ra[None, :] - ra[:, None] + 180) % 360 - 180) * cos_dec * 3600
    ddec = (ref_dec[None, :] - dec[:, None]) * 3600
    near = (np.abs(dra) < search_arcsec) & (np.abs(ddec) < search_arcsec)
    if near.sum() < 3:
        raise ValueError(
            f'only {int(near.sum())} detection-reference pairs lie within {search_arcsec}" '
            f"({np.size(ra)} detections, {np.size(ref_ra)} reference stars): the header WCS is "
            f"too far off or the reference catalogue does not cover this CCD"
        )
    bins = np.arange(-search_arcsec, search_arcsec + 0.5, 0.5)
    counts, xe, ye = np.histogram2d(dra[near], ddec[near], bins=(bins, bins))
    i, j = np.unravel_index(np.argmax(counts), counts.shape)
    peak = ((xe[i] + xe[i + 1]) / 2, (ye[j] + ye[j + 1]) / 2)
    close = near & (np.hypot(dra - peak[0], ddec - peak[1]) < 1.0)
    return (
        float(np.median(dra[close])) / 3600 / cos_dec,
        float(np.median(ddec[close])) / 3600,
    )


def solve_tan_sip(
    x: np.ndarray,
    y: np.ndarray,
    guess,
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    crpix: tuple[float, float],
    *,
    search_arcsec: float = 10.0,
    match_arcsec: float = 1.0,
    degree: int = 3,
) -> tuple[dict[str, object], dict[str, float]]:
    """Solve a CCD: ``guess(x, y) -> (ra, dec)`` is the header's WCS (1-based pixels).

    The offset that lays most detections on reference stars (within ``search_arcsec``)
    corrects the pointing; then match within ``match_arcsec`` and fit TAN-SIP, twice (the
    second pass matches through the first solution). Returns the cards and the fit's statistics."""
    ra, dec = guess(x, y)
    dra, ddec = pointing_offset(ra, dec, ref_ra, ref_dec, search_arcsec)
    ra, dec = ra + dra, dec + ddec
    cards: dict[str, object] = {}
    for _ in range(2):
        match, _ = nearest_match(ra, dec, ref_ra, ref_dec, match_arcsec)
        used = match >= 0
        degree = min(degree, 3 if used.sum() >= 40 else 2 if used.sum() >= 15 else 1)
        if used.sum() < 4:
            raise ValueError(f"only {int(used.sum())} detections match a reference star")
        middle = guess(np.array([crpix[0]]), np.array([crpix[1]]))
        centre = tuple(float(np.ravel(c)[0]) for c in middle)
        cards = fit_tan_sip(
            x[used], y[used], ref_ra[match[used]], ref_dec[match[used]], crpix, centre, degree
        )
        ra, dec = pixel_to_sky(cards, x, y)
    match, _ = nearest_match(ra, dec, ref_ra, ref_dec, match_arcsec)
    used = match >= 0
    fit_ra, fit_dec = pixel_to_sky(cards, x[used], y[used])
    dra = ((fit_ra - ref_ra[match[used]] + 180) % 360 - 180) * np.cos(np.radians(fit_dec))
    ddec = fit_dec - ref_dec[match[used]]
    rms = float(np.sqrt(np.mean(dra**2 + ddec**2)) * 3600)
    return cards, {"matched": int(used.sum()), "rms_arcsec": rms}


def solve(
    x: np.ndarray,
    y: np.ndarray,
    ref_ra: np.ndarray,
    ref_dec: np.ndarray,
    guess: object,
    *,
    search_radius: float = 200.0,
    match_radius: float = 3.0,
    sip_degree: int | None = 3,
    min_stars: int = 5,
    shape: tuple[int, int] | None = None,
) -> Solution:
    """Fit a WCS for sources at pixels (x, y) (0-based) given reference stars and a
    first-guess WCS; radii in pixels. With the image ``shape`` only the stars that can
    fall on it (within the search radius) are considered."""
    from astropy.coordinates import SkyCoord
    from astropy.wcs.utils import fit_wcs_from_points

    ref_x, ref_y = guess.all_world2pix(ref_ra, ref_dec, 0)
    if shape is not None:
        on = (ref_x > -search_radius) & (ref_x < shape[1] + search_radius)
        on &= (ref_y > -search_radius) & (ref_y < shape[0] + search_radius)
        ref_ra, ref_dec, ref_x, ref_y = ref_ra[on], ref_dec[on], ref_x[on], ref_y[on]
    dx, dy, agreeing = offset_peak(x, y, ref_x, ref_y, search_radius)
    if agreeing < min_stars:
        raise AstrometryError(
            f"only {agreeing} sources agree on a shift to the {len(ref_ra)} reference stars "
            f"(need {min_stars}); is the pointing in the header right, and the catalogue "
            f"the right one for this field?"
        )
    wcs, radius = guess, match_radius
    shifted_x, shifted_y = x + dx, y + dy
    keep = np.ones(len(x), bool)
    for _ in range(ITERATIONS):
        pairs_s, pairs_r = pair_up(shifted_x[keep], shifted_y[keep], ref_x, ref_y, radius)
        pairs_s = np.flatnonzero(keep)[pairs_s]
        if pairs_s.size < min_stars:
            raise AstrometryError(f"only {pairs_s.size} sources pair with reference stars")
        degree = sip_degree_for(pairs_s.size, sip_degree)
        stars = SkyCoord(ref_ra[pairs_r], ref_dec[pairs_r], unit="deg")
        wcs = fit_wcs_from_points(
            (x[pairs_s], y[pairs_s]), stars, proj_point="center", sip_degree=degree
        )
        separation = residuals_arcsec(
            wcs, x[pairs_s], y[pairs_s], ref_ra[pairs_r], ref_dec[pairs_r]
        )
        rms = float(np.sqrt(np.mean(separation**2)))
        # next pass: positions through the new solution, outliers dropped
        ref_x, ref_y = wcs.all_world2pix(ref_ra, ref_dec, 0)
        shifted_x, shifted_y = x, y
        pixel_scale = proj_plane_scale_arcsec(wcs)
        radius = max(3 * rms / pixel_scale, 1.0)
        outliers = pairs_s[separation > max(3 * rms, 1e-3)]
        keep[outliers] = False
    return Solution(
        wcs=wcs,
        rms_arcsec=rms,
        n_stars=int(pairs_s.size),
        shift_pixels=(dx, dy),
        sip_degree=degree,
        source_index=pairs_s,
        reference_index=pairs_r,
    )


def residuals_arcsec(wcs, x, y, ra, dec) -> np.ndarray:
    """Angular distance (arcsec) between the WCS position of each pixel and its star."""
    fit_ra, fit_dec = wcs.all_pix2world(x, y, 0)
    return angular_distance_arcsec(fit_ra, fit_dec, ra, dec)


def angular_distance_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, float)) for v in (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0, 1)))) * 3600.0


def proj_plane_scale_arcsec(wcs) -> float:
    from astropy.wcs.utils import proj_plane_pixel_scales

    return float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0
