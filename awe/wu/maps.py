"""Parameter maps of fitted galaxies: a FITS cube per galaxy (one plane per parameter and
statistic: best fit, 2.5/16/50/84/97.5 percentiles) and PNG previews of stellar mass, SFR,
dust luminosity and mu (asinh stretch, a black-red-yellow-white ramp as POGS' 'fire')."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from awe.science.sed import PARAMETERS, parse_fit

STATISTICS = ("p2_5", "p16", "median", "p84", "p97_5")
PREVIEWS = ("m", "sfr", "ldust", "mu")


def galaxy_cubes(products: list[Any]) -> dict[str, tuple[np.ndarray, dict]]:
    """[parameter, statistic, y, x] per galaxy from SEDFitFile products (NaN: not fitted)."""
    by_galaxy: dict[str, list[Any]] = defaultdict(list)
    for product in products:
        by_galaxy[product.metadata["object"]].append(product)
    cubes = {}
    for galaxy, items in by_galaxy.items():
        results = items[0].metadata["results"]
        nx, ny = results["pixels"]["dimensions"]
        cube = np.full((len(PARAMETERS), len(STATISTICS), ny, nx), np.nan)
        seen = set()
        for product in items:
            coordinates = product.metadata["results"]["pixels"]["xy"]
            if product.metadata["results"]["workunit"].split("#")[0] in seen:
                continue  # the second result of a validated pair
            seen.add(product.metadata["results"]["workunit"].split("#")[0])
            for pixel, values in parse_fit(Path(product.path).read_text()).items():
                x, y = coordinates[pixel]
                for k, parameter in enumerate(PARAMETERS):
                    if parameter.column in values:
                        cube[k, :, y, x] = values[parameter.column]
        cubes[galaxy] = (cube, results)
    return cubes


def write_maps(products: list[Any], folder: Path) -> dict[str, list[tuple[Path, str]]]:
    from astropy.io import fits

    written: dict[str, list[tuple[Path, str]]] = {}
    for galaxy, (cube, _) in galaxy_cubes(products).items():
        hdul = fits.HDUList([fits.PrimaryHDU()])
        hdul[0].header["OBJECT"] = galaxy
        for k, parameter in enumerate(PARAMETERS):
            hdu = fits.ImageHDU(cube[k].astype(np.float32), name=parameter.column.upper())
            hdu.header["PARAM"] = (parameter.title, "MAGPHYS parameter")
            hdu.header["LOG10"] = (parameter.log, "values are log10")
            for s, statistic in enumerate(STATISTICS):
                hdu.header[f"PLANE{s + 1}"] = statistic
            hdul.append(hdu)
        path = folder / f"{galaxy}_parameters.fits"
        hdul.writeto(path, overwrite=True)
        written[galaxy] = [(path, "ParameterMap")]
        for column in PREVIEWS:
            k = [p.column for p in PARAMETERS].index(column)
            png = folder / f"{galaxy}_{column}.png"
            write_preview(cube[k, STATISTICS.index("median")], png)
            written[galaxy].append((png, "ParameterPreview"))
    return written


def write_preview(image: np.ndarray, path: Path) -> None:
    """An asinh-stretched PNG (NaN black), flipped so y grows upwards as in FITS viewers."""
    from astropy.visualization import AsinhStretch, MinMaxInterval
    from PIL import Image

    finite = np.isfinite(image)
    scaled = np.zeros(image.shape)
    if finite.any():
        values = MinMaxInterval()(image[finite])
        scaled[finite] = AsinhStretch(0.1)(values)
    level = scaled[::-1]
    rgb = np.stack(
        [np.clip(3 * level, 0, 1), np.clip(3 * level - 1, 0, 1), np.clip(3 * level - 2, 0, 1)],
        axis=-1,
    )
    Image.fromarray((rgb * 255).astype(np.uint8)).resize(
        (image.shape[1] * 8, image.shape[0] * 8), Image.NEAREST
    ).save(path)
