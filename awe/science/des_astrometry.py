"""Astrometric solution of one CCD against a reference catalogue (SCAMP's job in DES SE):
match detections to reference stars, then fit a TAN projection with SIP distortion by
linear least squares. Pure numpy; the WCS is returned as FITS header cards.
"""

from __future__ import annotations

import numpy as np

from awe.science.des_sky import from_tangent_plane, tangent_plane


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


def _sip_terms(
    u: np.ndarray, v: np.ndarray, degree: int
) -> tuple[list[tuple[int, int]], np.ndarray]:
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
    powers, design = _sip_terms(u, v, degree)
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


def solve(
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
