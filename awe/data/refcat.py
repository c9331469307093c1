"""The reference catalogue, kept as the DES pipeline keeps Gaia: one CSV file per HEALPix
pixel (nside 32, RING order, as healpy's default), so a chip's stars are read from the
few pixels its field touches instead of from the whole sky.

Layout under a catalogue folder::

    refcat.json                      nside, order, columns, bands, pixels, star count
    healpix32/00400/00412.csv        stars of pixel 412 (folders of 100 pixels)

The simulator makes a synthetic catalogue (:func:`synthetic_catalogue`) and renders its
stars into the images; the astrometric and photometric sequences read it back with
:func:`read_cone`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

NSIDE = 32
ORDER = "ring"
INDEX_NAME = "refcat.json"
#: Colour coefficients: m_band = m_r + coefficient * (g - r). A simple linear colour model,
#: enough for every filter of every instrument to have its own catalogue magnitude.
COLOUR_COEFFICIENTS = {
    "u": 2.2, "g": 1.0, "r": 0.0, "i": -0.35, "z": -0.55, "Y": -0.65,
    "U": 2.0, "B": 1.25, "V": 0.55, "R": -0.2, "I": -0.55,
}  # fmt: skip
BANDS = tuple(COLOUR_COEFFICIENTS)
Catalogue = dict[str, np.ndarray]


def healpix(nside: int = NSIDE, order: str = ORDER):
    from astropy_healpix import HEALPix

    return HEALPix(nside=nside, order=order)


def pixel_of(ra: np.ndarray, dec: np.ndarray, nside: int = NSIDE) -> np.ndarray:
    """HEALPix pixel (RING order) of each position, in degrees."""
    import astropy.units as u

    return healpix(nside).lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg)


def synthetic_catalogue(
    fields: Sequence[tuple[float, float, float]],
    density: float,
    mag_range: tuple[float, float],
    rng: np.random.Generator,
    *,
    slope: float = 0.3,
) -> Catalogue:
    """Stars scattered uniformly over discs ``(ra, dec, radius)`` (degrees), ``density``
    stars per square degree with r magnitudes from the counts law N(<m) ~ 10**(slope m),
    a g-r colour each, and a magnitude in every band of :data:`BANDS`."""
    ras, decs = [], []
    for ra0, dec0, radius in fields:
        area = 2 * np.pi * (1 - np.cos(np.radians(radius))) * (180 / np.pi) ** 2
        n = rng.poisson(density * area)
        # Uniform on the spherical cap around the pole, then rotated to (ra0, dec0).
        cos_theta = 1 - rng.random(n) * (1 - np.cos(np.radians(radius)))
        theta, phi = np.arccos(cos_theta), rng.random(n) * 2 * np.pi
        ra, dec = _rotate_from_pole(theta, phi, ra0, dec0)
        ras.append(ra)
        decs.append(dec)
    ra, dec = np.concatenate(ras), np.concatenate(decs)
    low, high = 10 ** (slope * mag_range[0]), 10 ** (slope * mag_range[1])
    mag_r = np.log10(low + rng.random(ra.size) * (high - low)) / slope
    colour = np.clip(rng.normal(0.6, 0.3, ra.size), -0.3, 1.6)
    return make_catalogue(ra, dec, mag_r, colour)


def make_catalogue(
    ra: np.ndarray, dec: np.ndarray, mag_r: np.ndarray, colour: np.ndarray
) -> Catalogue:
    """A catalogue from positions, r magnitudes and g-r colours (ids numbered from 1)."""
    catalogue: Catalogue = {
        "id": np.arange(1, ra.size + 1, dtype=np.int64),
        "ra": np.asarray(ra, float) % 360.0,
        "dec": np.asarray(dec, float),
    }
    for band, coefficient in COLOUR_COEFFICIENTS.items():
        catalogue[f"mag_{band}"] = np.asarray(mag_r) + coefficient * np.asarray(colour)
    return catalogue


def concatenate(parts: Sequence[Catalogue]) -> Catalogue:
    """Join catalogues and renumber their ids from 1."""
    joined = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    joined["id"] = np.arange(1, joined["ra"].size + 1, dtype=np.int64)
    return joined


def _rotate_from_pole(theta: np.ndarray, phi: np.ndarray, ra0: float, dec0: float):
    """Positions at angle ``theta`` from the pole and azimuth ``phi``, moved so the pole
    lands on (ra0, dec0). Returns (ra, dec) in degrees."""
    x = np.sin(theta) * np.cos(phi)
    y = np.sin(theta) * np.sin(phi)
    z = np.cos(theta)
    tilt = np.radians(90.0 - dec0)  # rotate about y by the colatitude, then about z by ra0
    x, z = x * np.cos(tilt) + z * np.sin(tilt), -x * np.sin(tilt) + z * np.cos(tilt)
    ra = np.degrees(np.arctan2(y, x)) + ra0
    dec = np.degrees(np.arcsin(np.clip(z, -1, 1)))
    return ra % 360.0, dec


def write_partitioned(catalogue: Catalogue, folder: str | os.PathLike[str]) -> list[int]:
    """Write the catalogue as one CSV per HEALPix pixel plus ``refcat.json``; return the
    pixels written."""
    folder = Path(folder)
    pixels = pixel_of(catalogue["ra"], catalogue["dec"])
    columns = list(catalogue)
    written = []
    order = np.argsort(pixels, kind="stable")
    unique, starts = np.unique(pixels[order], return_index=True)
    for pixel, rows in zip(unique, np.split(order, starts[1:]), strict=True):
        path = pixel_path(folder, int(pixel))
        path.parent.mkdir(parents=True, exist_ok=True)
        table = np.column_stack([catalogue[c][rows] for c in columns])
        formats = ["%d" if c == "id" else "%.8f" if c in ("ra", "dec") else "%.4f" for c in columns]
        np.savetxt(path, table, delimiter=",", fmt=formats, header=",".join(columns), comments="")
        written.append(int(pixel))
    index = {
        "nside": NSIDE,
        "order": ORDER,
        "columns": columns,
        "bands": list(BANDS),
        "pixels": written,
        "stars": int(catalogue["ra"].size),
        "layout": "healpix32/<pixel // 100 * 100 :05d>/<pixel:05d>.csv",
    }
    (folder / INDEX_NAME).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return written


def pixel_path(folder: Path, pixel: int) -> Path:
    return Path(folder) / f"healpix{NSIDE}" / f"{pixel // 100 * 100:05d}" / f"{pixel:05d}.csv"


def read_pixels(
    folder: str | os.PathLike[str],
    pixels: Sequence[int],
    cache: dict[int, np.ndarray] | None = None,
) -> Catalogue:
    """The stars of the given HEALPix pixels (missing pixels hold no stars). ``cache``
    (pixel -> rows) keeps the pixels read across calls: neighbouring CCDs of an exposure
    share most of theirs, and parsing a pixel's CSV costs far more than selecting from it."""
    folder = Path(folder)
    columns = json.loads((folder / INDEX_NAME).read_text(encoding="utf-8"))["columns"]
    cache = {} if cache is None else cache
    parts = []
    for pixel in (int(p) for p in pixels):
        if pixel not in cache:
            path = pixel_path(folder, pixel)
            cache[pixel] = (
                np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
                if path.exists()
                else np.empty((0, len(columns)))
            )
        parts.append(cache[pixel])
    table = np.vstack(parts) if parts else np.empty((0, len(columns)))
    result = {c: table[:, i] for i, c in enumerate(columns)}
    result["id"] = result["id"].astype(np.int64)
    return result


def read_cone(folder: str | os.PathLike[str], ra: float, dec: float, radius: float) -> Catalogue:
    """Stars within ``radius`` degrees of (ra, dec), read from the pixels the cone touches."""
    import astropy.units as u

    pixels = healpix().cone_search_lonlat(ra * u.deg, dec * u.deg, radius * u.deg)
    stars = read_pixels(folder, sorted(int(p) for p in pixels))
    keep = angular_distance(stars["ra"], stars["dec"], ra, dec) <= radius
    return {key: values[keep] for key, values in stars.items()}


def angular_distance(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance in degrees (haversine, accurate at small separations)."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, float)) for v in (ra1, dec1, ra2, dec2))
    a = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(a, 0, 1))))


def band_magnitudes(catalogue: Mapping[str, np.ndarray], band: str) -> np.ndarray:
    key = f"mag_{band}"
    if key not in catalogue:
        raise KeyError(f"the catalogue has no band {band!r}; bands: {', '.join(BANDS)}")
    return catalogue[key]
