"""Bias and DomeFlat on full-size chips: AWE's calibration path against ccdproc doing the
same work (overscan per row, trim, sigma-clipped average combine) in the same run.

Writes 10 raw biases and 10 raw dome flats of one full-size WFI chip (2142 x 4128 raw,
2048 x 4096 data) with the simulator, then times, for each of the two masters:

- AWE: read each raw file into a preallocated float32 stack with per-row overscan
  correction and trimming (``sequences.calibration_common.read_stack``, what the Bias and
  DomeFlat tasks call), then the clipped mean (``awe.science.combine``/``flat``);
- ccdproc: ``CCDData.read``, ``subtract_overscan`` (per-row median), ``trim_image``,
  (``subtract_bias`` and division by the median for flats), ``combine(method='average',
  sigma_clip=True)`` with the same median-centred 3-sigma clipping.

Both use the per-row median of the overscan (AWE's method 5; its default 6 only adds a
smoothing of that vector). Prints both times, the ratio, the largest difference between
the two results, and AWE's peak memory (tracemalloc, a separate run) against the size of
the float32 stack. Target: >= 10x faster, peak memory <= 3x the stack.
Run: python benchmarks/calibration.py [--frames 10] [--skip-ccdproc]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

OVERSCAN_METHOD = 5  # per-row median of the overscan, as ccdproc's subtract_overscan


def write_raw_frames(folder: Path, count: int) -> tuple[list[Path], list[Path], object]:
    """``count`` raw biases and dome flats of WFI's ccd50 at full size, as FITS files."""
    from astropy.io import fits

    from awe.data.instruments import get_instrument
    from awe.data.sim_chip import ChipModel, rng_for

    instrument = get_instrument("WFI")
    chip = instrument.chip("ccd50")
    model = ChipModel(instrument, chip, seed=1)
    header = fits.Header(instrument.detector.header_cards())
    biases, flats = [], []
    for index in range(2 * count):
        is_flat = index >= count
        signal = 22000.0 * model.dome_illumination if is_flat else None
        raw, _truth = model.expose(
            rng_for(1, 99, index), signal=signal, exposure_time=8.0 if is_flat else 0.0
        )
        path = folder / f"{'flat' if is_flat else 'bias'}{index:02d}.fits"
        fits.PrimaryHDU(raw, header=header).writeto(path)
        (flats if is_flat else biases).append(path)
    return biases, flats, instrument


def awe_masters(biases, flats, instrument) -> tuple[np.ndarray, np.ndarray, float, float]:
    """AWE's master bias and dome flat, and the seconds each took."""
    from awe.science.combine import clipped_mean
    from awe.science.flat import combine_flats
    from sequences.calibration_common import read_stack

    started = time.perf_counter()
    stack, _regions = read_stack(
        [{"path": str(p), "name": p.name} for p in biases], instrument, OVERSCAN_METHOD
    )
    bias = clipped_mean(stack, 3.0).image
    del stack
    middle = time.perf_counter()
    stack, _regions = read_stack(
        [{"path": str(p), "name": p.name} for p in flats], instrument, OVERSCAN_METHOD, bias=bias
    )
    flat = combine_flats(stack, 3.0)[0].image
    del stack
    return bias, flat, middle - started, time.perf_counter() - middle


def ccdproc_masters(biases, flats, instrument) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The same masters with ccdproc, and the seconds each took."""
    import ccdproc
    from astropy.nddata import CCDData

    from awe.science.flat import level  # the same normalisation: the combines are compared

    amp = instrument.detector.amplifiers[0]
    rows = amp.data.slices[0]  # the overscan strip covers the data rows only
    overscan_columns = amp.overscan.slices[1]
    data_columns = amp.data.slices[1]
    options = dict(
        method="average",
        sigma_clip=True,
        sigma_clip_low_thresh=3.0,
        sigma_clip_high_thresh=3.0,
        sigma_clip_func=np.ma.median,
        sigma_clip_dev_func=np.ma.std,
        mem_limit=8e9,
    )

    def reduced(path, bias=None):
        ccd = ccdproc.trim_image(CCDData.read(path, unit="adu")[rows, :])
        ccd = ccdproc.subtract_overscan(
            ccd, overscan=ccd[:, overscan_columns], overscan_axis=1, median=True
        )
        ccd = ccdproc.trim_image(ccd[:, data_columns])
        if bias is not None:
            ccd = ccdproc.subtract_bias(ccd, bias)
            ccd = ccd.divide(level(ccd.data), handle_meta="first_found")
        return ccd

    started = time.perf_counter()
    bias = ccdproc.combine([reduced(p) for p in biases], **options)
    middle = time.perf_counter()
    flat = ccdproc.combine([reduced(p, bias) for p in flats], **options)
    flat_data = flat.data / level(flat.data)
    return bias.data, flat_data, middle - started, time.perf_counter() - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="raw frames per master")
    parser.add_argument("--skip-ccdproc", action="store_true", help="AWE only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        print(f"Simulating {args.frames} biases and {args.frames} dome flats (2142 x 4128)...")
        biases, flats, instrument = write_raw_frames(Path(scratch), args.frames)
        stack_bytes = args.frames * 2048 * 4096 * 4
        awe_bias, awe_flat, awe_bias_s, awe_flat_s = awe_masters(biases, flats, instrument)
        tracemalloc.start()
        awe_masters(biases, flats, instrument)
        _now, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"AWE     Bias     : {awe_bias_s:6.2f} s")
        print(f"AWE     DomeFlat : {awe_flat_s:6.2f} s")
        print(
            f"AWE peak memory  : {peak / 2**20:.0f} MiB = {peak / stack_bytes:.2f} x the "
            f"float32 stack ({stack_bytes / 2**20:.0f} MiB)"
        )
        if args.skip_ccdproc:
            return
        ref_bias, ref_flat, ref_bias_s, ref_flat_s = ccdproc_masters(biases, flats, instrument)
        print(f"ccdproc Bias     : {ref_bias_s:6.2f} s (baseline)")
        print(f"ccdproc DomeFlat : {ref_flat_s:6.2f} s (baseline)")
        print(f"ratio Bias       : {ref_bias_s / awe_bias_s:6.1f} x faster")
        print(f"ratio DomeFlat   : {ref_flat_s / awe_flat_s:6.1f} x faster")
        total = (ref_bias_s + ref_flat_s) / (awe_bias_s + awe_flat_s)
        print(f"ratio both       : {total:6.1f} x faster")
        bias_diff = np.abs(awe_bias - ref_bias)
        flat_diff = np.abs(awe_flat - ref_flat) / np.abs(ref_flat)
        print(
            f"max |AWE - ccdproc| Bias: {bias_diff.max():.2e} ADU (median |bias| "
            f"{np.median(np.abs(ref_bias)):.2f} ADU); pixels differing by > 1e-3 ADU: "
            f"{int((bias_diff > 1e-3).sum())}"
        )
        print(
            f"max relative |AWE - ccdproc| DomeFlat: {flat_diff.max():.2e}; pixels above "
            f"1e-5: {int((flat_diff > 1e-5).sum())} of {flat_diff.size}"
        )


if __name__ == "__main__":
    main()
