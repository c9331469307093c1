"""Seconds per galaxy of GalFit's PSF-convolved Sersic fit against a plain astropy fit of
``Sersic2D`` (no PSF, sampled at pixel centres, same fitter) in the same run, and what
each recovers of the true index and effective radius.

    python benchmarks/galaxy_fit.py [--galaxies 6] [--repeat 3] [--size 61]

The galaxies are drawn by the simulator's renderer (``awe.data.sim_galaxies.render``:
Sersic profiles averaged over pixels finely, convolved with a Moffat PSF of FWHM 3.75
pixels, beta 3) with sky noise and the galaxies' photon noise; n in 1-4, r_eff 4-8
pixels, total flux 1e5 ADU. Each fit is timed ``--repeat`` times, interleaved, and the
fastest kept: on a shared machine that is the time the code takes when it gets the cores.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from awe.data.sim_galaxies import render
from awe.science.des_psf import moffat
from awe.science.galaxies import fit_sersic, initial_guess

FWHM, BETA, SKY_RMS, GAIN = 3.75, 3.0, 7.0, 2.0


def galaxies(count: int, size: int, rng: np.random.Generator) -> list[tuple[dict, np.ndarray]]:
    made = []
    for n, r_eff in zip(np.linspace(1.0, 4.0, count), np.linspace(4.0, 8.0, count), strict=True):
        truth = {"x": size // 2 + rng.uniform(-0.5, 0.5), "y": size // 2 + rng.uniform(-0.5, 0.5),
                 "flux_adu": 1e5, "n": n, "r_eff": r_eff, "ellipticity": rng.uniform(0.1, 0.5),
                 "theta": rng.uniform(0, np.pi)}  # fmt: skip
        image = np.zeros((size, size))
        render(image, {k: [v] for k, v in truth.items()}, 0, 0, FWHM, BETA)
        noisy = image + rng.normal(0, 1, image.shape) * np.sqrt(SKY_RMS**2 + image / GAIN)
        made.append((truth, noisy))
    return made


def plain_astropy(data: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Sersic2D at pixel centres, no PSF, the same fitter and start: (n, r_eff)."""
    from astropy.modeling import fitting
    from astropy.modeling.models import Const2D, Sersic2D

    start = initial_guess(data, weight)
    peak = float(data.max() - start["background"])
    model = Sersic2D(peak / 10, start["r_eff"], 2.0, start["x_0"], start["y_0"],
                     start["ellip"], start["theta"]) + Const2D(start["background"])  # fmt: skip
    model.n_0.bounds, model.ellip_0.bounds, model.r_eff_0.bounds = (0.3, 8), (0, 0.95), (0.2, 99)
    y, x = np.mgrid[0 : data.shape[0], 0 : data.shape[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = fitting.TRFLSQFitter()(model, x, y, data, weights=np.sqrt(weight), maxiter=200)
    return float(fitted.n_0.value), float(fitted.r_eff_0.value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=61, help="cutout side (pixels)")
    args = parser.parse_args()
    psf = moffat(15, FWHM, BETA)  # the true PSF: this measures the fit, not the PSF
    made = galaxies(args.galaxies, args.size, np.random.default_rng(5))
    ours, plain = np.full(args.galaxies, np.inf), np.full(args.galaxies, np.inf)
    errors: dict[str, list[tuple[float, float]]] = {"ours": [], "plain": []}
    for _ in range(args.repeat):
        for i, (truth, data) in enumerate(made):
            weight = np.full(data.shape, 1 / SKY_RMS**2)
            started = time.perf_counter()
            fit = fit_sersic(data, weight, psf, gain=GAIN)
            ours[i] = min(ours[i], time.perf_counter() - started)
            started = time.perf_counter()
            n, r_eff = plain_astropy(data, weight)
            plain[i] = min(plain[i], time.perf_counter() - started)
            if len(errors["ours"]) < len(made):
                errors["ours"].append((fit.n / truth["n"] - 1, fit.r_eff / truth["r_eff"] - 1))
                errors["plain"].append((n / truth["n"] - 1, r_eff / truth["r_eff"] - 1))
    for name, seconds in (("GalFit fit_sersic (PSF, oversampled)", ours),
                          ("plain astropy Sersic2D (no PSF)", plain)):  # fmt: skip
        key = "ours" if seconds is ours else "plain"
        worst = np.abs(np.array(errors[key])).max(axis=0) * 100
        print(f"{name}: {np.median(seconds):.2f} s per galaxy (median of {len(made)}); "
              f"worst error n {worst[0]:.1f} %, r_eff {worst[1]:.1f} %")  # fmt: skip
    print(f"ratio (GalFit / plain astropy): {np.median(ours) / np.median(plain):.2f}")


if __name__ == "__main__":
    main()
