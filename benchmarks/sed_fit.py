"""Pixels per second of the vectorised MAGPHYS fit against a per-pixel numpy loop, in the
same run, on a library of >= 10,000 energy-balanced pairs; FLOP rate of its matrix
products against the machine's peak; and the comparison with MAGPHYS' 6-14 min/pixel.

    python benchmarks/sed_fit.py [--pixels 200] [--loop-pixels 20] [--repeat 3] [--sfh 300]

Each is timed ``--repeat`` times, interleaved, and the fastest of each kept: on a shared
machine that is the time the code takes when it gets the cores.

Uses the shipped demo library (300 SFH x 300 IR models, 11 filters), or with ``--sfh N``
and bagpipes installed a freshly built one (N SFH models x the full DL07 set).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from awe.science import sed
from awe.wu.library import DEMO_LIBRARY, REDSHIFTS


def demo_models(z_index: int = 4) -> tuple[sed.Models, np.ndarray]:
    with np.load(DEMO_LIBRARY) as data:
        sfh = {k[6:]: data[k].astype(float) for k in data.files if k.startswith("sfh_p_")}
        ir = {k[5:]: data[k].astype(float) for k in data.files if k.startswith("ir_p_")}
        models = sed.Models(
            data["sfh_flux"][z_index].astype(float), sfh, data["ir_flux"][z_index].astype(float), ir
        )
    eff = np.array([0.152, 0.231, 0.3534, 0.4742, 0.6189, 0.7595, 0.9032, 3.4, 4.6, 12.0, 22.0])
    return models, sed.optical_mask(eff, float(REDSHIFTS[z_index]))


def built_models(n_sfh: int, z: float = 0.05) -> tuple[sed.Models, np.ndarray]:
    from awe.science import sedlib
    from awe.wu.library import DEMO_FILTERS, build_models, filter_curves

    sfh, ir = build_models(n_sfh, 1, 1)
    matrix = sedlib.projection(z, filter_curves([c for _, c in DEMO_FILTERS]))
    eff = np.array([0.152, 0.231, 0.3534, 0.4742, 0.6189, 0.7595, 0.9032, 3.4, 4.6, 12.0, 22.0])
    models = sed.Models(sfh.spectra @ matrix, sfh.parameters, ir.spectra @ matrix, ir.parameters)
    return models, sed.optical_mask(eff, z)


def pixels(models: sed.Models, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    i, j = sed.allowed_pairs(models.sfh["fmu_sfh"], models.ir["fmu_ir"])
    pick = rng.integers(0, i.size, n)
    flux = models.sfh_flux[i[pick]] + models.sfh["ldust"][i[pick], None] * models.ir_flux[j[pick]]
    flux *= 10 ** rng.uniform(7, 9, n)[:, None]
    sigma = 0.1 * flux
    return flux + sigma * rng.standard_normal(flux.shape), sigma


def peak_flops(seconds: float = 1.0) -> float:
    """Measured: a large float64 matrix product (the machine's practical BLAS peak)."""
    a = np.random.default_rng(0).random((1024, 1024))
    a @ a
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ a
        count += 1
    return count * 2 * 1024**3 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=200)
    parser.add_argument("--loop-pixels", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sfh", type=int, default=0, help="build N SFH models (needs bagpipes)")
    args = parser.parse_args()
    models, optical = built_models(args.sfh) if args.sfh else demo_models()
    i, _ = sed.allowed_pairs(models.sfh["fmu_sfh"], models.ir["fmu_ir"])
    nf = models.sfh_flux.shape[1]
    flux, sigma = pixels(models, args.pixels)
    print(
        f"library: {len(models.sfh_flux)} SFH x {len(models.ir_flux)} IR models, {i.size} "
        f"energy-balanced pairs, {nf} filters; cores: {os.cpu_count()}"
    )
    vector = loop = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        fast = sed.fit_pixels(flux, sigma, optical, models)
        vector = min(vector, time.perf_counter() - start)
        start = time.perf_counter()
        slow = sed.fit_pixel_loop(
            flux[: args.loop_pixels], sigma[: args.loop_pixels], optical, models
        )
        loop = min(loop, time.perf_counter() - start)
    worst = max(
        float(np.nanmax(np.abs(a.percentiles - b.percentiles)))
        for a, b in zip(fast, slow, strict=False)
    )
    vector_rate, loop_rate = args.pixels / vector, args.loop_pixels / loop
    flops = 2 * 2 * args.pixels * i.size * nf  # two products over the filters
    peak = peak_flops()
    print(f"vectorised : {vector_rate:10.1f} pixels/s ({args.pixels} pixels in {vector:.2f} s)")
    print(f"numpy loop : {loop_rate:10.1f} pixels/s ({args.loop_pixels} pixels in {loop:.2f} s)")
    print(
        f"ratio      : {vector_rate / loop_rate:10.1f} x   (largest percentile difference "
        f"{worst:.1e})"
    )
    print(
        f"matrix FLOP: {flops / vector / 1e9:10.2f} GFLOP/s of a measured {peak / 1e9:.1f} "
        f"GFLOP/s peak ({100 * flops / vector / peak:.1f} %)"
    )
    per_pixel = vector / args.pixels
    print(
        f"per pixel  : {1e3 * per_pixel:10.2f} ms; MAGPHYS on POGS volunteers: 6-14 min/pixel "
        f"({360 / per_pixel:,.0f}x to {840 / per_pixel:,.0f}x slower, for its ~50,000-model "
        f"libraries)"
    )


if __name__ == "__main__":
    main()
