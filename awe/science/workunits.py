"""Cutting a galaxy into POGS work units: pixel acceptance, areas, the observations file,
credit and FLOP estimates. Pure functions over arrays, as theSkyNet POGS' fits2wu does it.

* A pixel is accepted when at least 4 optical bands have flux > 0, or exactly 3 optical
  bands and at least one UV or IR band do (NaN and 0 mean "no data").
* The image is cut in bands ``row_height`` rows tall; within a band, columns are scanned
  left to right collecting accepted pixels until at least ``min_pixels`` are held, closing
  the area at the end of that column. Each area is one work unit.
* The observations file has a JSON header line, then per pixel ``pix<id> <z>`` and one
  ``flux  sigma  `` pair per run filter (``-1  -1  `` where there is no data).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

FPOPS_BOUND_FACTOR = 50


@dataclass(frozen=True)
class Area:
    """A rectangle (``top_x, top_y`` to ``bottom_x, bottom_y`` as POGS stores it) and its
    accepted pixels as (x, y)."""

    top_x: int
    top_y: int
    bottom_x: int
    bottom_y: int
    pixels: tuple[tuple[int, int], ...]


def accepted(flux: np.ndarray, optical: np.ndarray, uv_or_ir: np.ndarray) -> np.ndarray:
    """Mask [y, x] of accepted pixels of a cube [band, y, x] (NaN or <= 0: no data)."""
    has = np.nan_to_num(flux, nan=0.0) > 0
    n_optical = has[np.asarray(optical, bool)].sum(axis=0)
    n_other = has[np.asarray(uv_or_ir, bool)].sum(axis=0)
    return (n_optical >= 4) | ((n_optical == 3) & (n_other >= 1))


def cut_areas(mask: np.ndarray, row_height: int, min_pixels: Sequence[int]) -> list[Area]:
    """Areas as POGS' fits2wu makes them; ``min_pixels`` is cycled area by area."""
    height, width = mask.shape
    areas: list[Area] = []
    sizes = _cycle(min_pixels)
    wanted = next(sizes)
    for top in range(0, height, row_height):
        band = mask[top : top + row_height]
        x = 0
        while x < width:
            pixels: list[tuple[int, int]] = []
            last = x
            for column in range(x, width):
                pixels += [(column, top + int(y)) for y in np.flatnonzero(band[:, column])]
                last = column
                if len(pixels) >= wanted:
                    break
            if pixels:
                bottom_y = min(top + row_height, height)
                areas.append(Area(x, top, last, bottom_y, tuple(pixels)))
                wanted = next(sizes)
            x = last + 1
    return areas


def _cycle(values: Sequence[int]) -> Iterator[int]:
    while True:
        yield from values


def pixel_sigma(flux: np.ndarray, snr: np.ndarray | None, fraction: float) -> np.ndarray:
    """sigma = flux / S/N with an S/N cube, else ``fraction`` x flux (POGS' rules)."""
    if snr is None:
        return flux * np.float32(fraction) if flux.dtype == np.float32 else flux * fraction
    with np.errstate(divide="ignore", invalid="ignore"):
        return flux / snr


def observations_text(
    header: dict, pixel_ids: Sequence[int], redshift: str, values: Sequence[Sequence[tuple]]
) -> str:
    """The observations file: ``#  [json]``, then ``pix<id> <z> `` and ``flux  sigma  ``
    pairs; ``values[p]`` holds (flux, sigma) per run filter, flux None or <= 0 for no data.
    Numbers are the shortest decimals that give back the values (float32 from FITS files
    as float32), written as Python writes floats."""
    lines = [f"#  {json.dumps([header])}\n"]
    for pixel_id, pairs in zip(pixel_ids, values, strict=True):
        parts = [f"pix{pixel_id} {redshift} "]
        for value, sigma in pairs:
            if value is None or not value > 0:
                parts.append("-1  -1  ")
            else:
                parts.append(f"{_number(value)}  {_number(sigma)}  ")
        lines.append("".join(parts) + "\n")
    return "".join(lines)


def _number(value) -> str:
    shortest = str(value) if isinstance(value, np.floating) else repr(float(value))
    return repr(float(shortest))


def parse_observations(text: str) -> tuple[dict, list[str], np.ndarray, np.ndarray]:
    """(header, pixel names, flux [pixel, filter], sigma) of an observations file;
    ``-1 -1`` becomes flux 0, sigma 0 (no data)."""
    lines = text.splitlines()
    header = json.loads(lines[0][1:].strip())[0]
    names, flux, sigma = [], [], []
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        numbers = np.array([float(v) for v in fields[2:]])
        names.append(fields[0])
        f, s = numbers[0::2], numbers[1::2]
        missing = (f == -1) & (s == -1)
        flux.append(np.where(missing, 0.0, f))
        sigma.append(np.where(missing, 0.0, s))
    return header, names, np.array(flux), np.array(sigma)


def credit_scaling(
    run_bands: tuple[int, int, int], file_bands: tuple[int, int, int]
) -> tuple[float, float]:
    """(cobblestone factor, fpops factor) from the (UV, IR, optical) band counts of the run
    and of the galaxy's file, as POGS' ``_calculate_credit``."""
    uv_run, ir_run, optical_run = run_bands
    uv_file, ir_file, optical_file = file_bands
    total = (
        0.01 * uv_run
        + 0.012 * ir_run
        + 0.01 * optical_run
        + 0.015 * uv_file
        + 0.02 * ir_file
        + 0.015 * optical_file
    )
    return 1.0 + total, 1.0 + 0.3 * total


def workunit_cost(pixels: int, fpops_per_pixel: float, credit_per_pixel: float):
    """(rsc_fpops_est, rsc_fpops_bound, credit) of a work unit of ``pixels`` pixels."""
    estimate = fpops_per_pixel * pixels * 1e12
    return estimate, estimate * FPOPS_BOUND_FACTOR, round(pixels * credit_per_pixel, 3)


def results_to_add(unsent: int, threshold: int, high_water_mark: int) -> int:
    """How many results fits2wu should add: none while ``unsent >= threshold``, else
    enough to reach ``threshold + high_water_mark`` (one work unit = 2 results in POGS)."""
    return 0 if unsent >= threshold else threshold - unsent + high_water_mark


def rounded_redshift(redshift: float) -> str | None:
    """The library redshift for ``redshift`` ('0.0100' ...), None when z >= 0.125."""
    if redshift >= 0.125:
        return None
    return f"{round(redshift + 1e-12, 2):.4f}" if redshift >= 0.005 else "0.0000"


def fix_redshift(redshift: str) -> str:
    """POGS' fix_redshift: a redshift exactly on an x.xx5 boundary moves down by 1e-4."""
    from decimal import Decimal

    value = Decimal(redshift)
    if (value * 1000) % 10 == 5 and value == value.quantize(Decimal("0.001")):
        value -= Decimal("0.0001")
    return str(value)
