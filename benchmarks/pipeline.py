"""The image pipeline's hot paths on full-size frames, against independent libraries
measured in the same run.

1. Reduce of one full-size WFI chip (2142 x 4128 raw): overscan per row, trim, bias, flat,
   against ccdproc's ``ccd_process`` doing the same steps (same result within 1e-5);
   then both with L.A.Cosmic, ``niter`` 4 and 2 (ours: ``awe.science.cosmics``, which
   gives astroscrappy's mask, checked pixel for pixel; ccdproc's ``cosmicray_lacosmic``,
   which calls astroscrappy, with the same parameters and bad-pixel mask).
2. Regrid + Coadd of ``--dithers`` dithered full-size chips onto a common grid, against
   reproject's ``reproject_and_coadd`` (bilinear, weighted mean) on the same frames.

Frames come from the simulator's chip model (one chip, no disk). Target: Reduce >= 5x
faster than ccdproc; Regrid+Coadd not slower than reproject_and_coadd, same result
within 0.1% (median and 99th percentile over pixels of S/N > 10).
Run: python benchmarks/pipeline.py [--dithers 5] [--runs 3] [--rows 512] [--coadd-only]
[--reduce-only]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def best_of(runs: int, function, *args, **kwargs):
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return min(times), result


def chip_frames(seed: int = 1):
    """A raw full-size WFI chip with sky and stars, its true bias and flat, and layout."""
    from awe.data.instruments import get_instrument
    from awe.data.sim_chip import ChipModel, Stars, rng_for
    from awe.science.overscan import Region

    instrument = get_instrument("WFI")
    chip = instrument.chips[1]
    model = ChipModel(instrument, chip, seed)
    rng = rng_for(seed, 99)
    n = 2000
    stars = Stars(
        x=rng.uniform(model.x0, model.x0 + model.nx, n),
        y=rng.uniform(model.y0, model.y0 + model.ny, n),
        flux=10 ** rng.uniform(2.5, 5.5, n),
        fwhm=4.0,
        beta=3.0,
    )
    sky = np.full((model.ny, model.nx), 500.0)
    raw, _truth = model.expose(rng, signal=sky, exposure_time=300.0, stars=stars)
    amp = instrument.detector.amplifiers[0]
    bias = model.overscan_corrected_bias()
    flat = (model.flat / model.flat.mean()).astype(np.float32)
    layout = [Region(amp.data.slices, amp.overscan.slices)]
    return raw, bias, flat, layout, amp, model


def bench_reduce(runs: int, iterations: tuple[int, ...] = (4, 2)) -> None:
    """Reduce without and with L.A.Cosmic (``niter`` of ``iterations``), AWE and ccdproc
    alternately, ``runs`` times each; the medians and the median of the per-run ratios. The
    cosmic-ray masks are compared with astroscrappy's own (ccdproc's is the same call)."""
    import ccdproc
    from astropy.nddata import CCDData

    from awe.science.reduce import reduce_ccd

    raw, bias, flat, layout, amp, _model = chip_frames()
    rows = amp.overscan.slices[0]
    bad = None

    def ours(niter: int):
        return reduce_ccd(
            raw, layout, bias=bias, flat=flat, overscan=5, cosmics=niter > 0,
            gain=amp.gain, read_noise=amp.read_noise, cosmic_iterations=max(niter, 1),
        )  # fmt: skip

    def theirs(niter: int):
        ccd = ccdproc.ccd_process(
            CCDData(raw[rows].astype(np.float32), unit="adu"),
            oscan=str(amp.overscan), trim=str(amp.data),
            master_bias=CCDData(bias, unit="adu"), master_flat=CCDData(flat, unit="adu"),
            oscan_median=True,
        )  # fmt: skip
        if niter:
            ccd.mask = bad  # AWE's flags before the search: the same pixels ignored
            ccd = ccdproc.cosmicray_lacosmic(
                ccd, gain=amp.gain, readnoise=amp.read_noise, niter=niter, sigclip=4.5,
                satlevel=65535.0,
            )  # fmt: skip
        return ccd

    bad = ours(0).flags != 0

    for niter in (0, *iterations):
        t_ours, t_theirs, mine, other = [], [], None, None
        for _ in range(runs):
            t, mine = best_of(1, ours, niter)
            t_ours.append(t)
            t, other = best_of(1, theirs, niter)
            t_theirs.append(t)
        ratio = float(np.median(np.array(t_theirs) / np.array(t_ours)))
        what = f"with L.A.Cosmic niter={niter}" if niter else "overscan+trim+bias+flat"
        print(
            f"Reduce one full WFI chip, {what}: AWE {np.median(t_ours):.3f} s, "
            f"ccdproc {np.median(t_theirs):.3f} s (medians of {runs}; "
            f"AWE {', '.join(f'{t:.2f}' for t in t_ours)}; "
            f"ccdproc {', '.join(f'{t:.2f}' for t in t_theirs)})"
        )
        print(f"  speed-up AWE/ccdproc (median of the per-run ratios): {ratio:.1f}x")
        if not niter:
            difference = np.max(np.abs(mine.image - other.data)) / np.abs(other.data).max()
            print(f"  largest difference / largest value: {difference:.1e}")
        else:
            check_mask(mine, amp, niter)


def check_mask(reduced, amp, niter: int) -> None:
    """AWE's cosmic-ray pixels (before its one-pixel growth) against astroscrappy's mask on
    the same image and mask."""
    import astroscrappy

    from awe.science.cosmics import detect_cosmics

    bad = (reduced.flags & ~np.uint8(8)) != 0
    options = dict(sigclip=4.5, gain=amp.gain, readnoise=amp.read_noise, satlevel=65535.0)
    ours = detect_cosmics(reduced.image, bad, niter=niter, **options)
    theirs, _clean = astroscrappy.detect_cosmics(
        reduced.image, inmask=bad, niter=niter, sepmed=True, cleantype="meanmask", **options
    )
    print(
        f"  cosmic-ray pixels: AWE {ours.sum()}, astroscrappy {theirs.sum()}, "
        f"different {np.sum(ours != theirs)}"
    )


def dithered_frames(count: int, rows: int | None = None):
    """``count`` full-size chips of one field, dithered by tens of arcseconds, with WCS
    (only the first ``rows`` rows of each with ``rows``, for quick runs)."""
    from awe.science.regrid import grid_wcs

    raw, bias, flat, layout, amp, model = chip_frames()
    from awe.science.reduce import reduce_ccd

    base = reduce_ccd(raw, layout, bias=bias, flat=flat, overscan=5, cosmics=False)
    image = (base.image - np.median(base.image))[:rows]
    weight = base.weight[:rows]
    frames = []
    for k in range(count):
        wcs = grid_wcs(150.0 + 0.004 * k, -29.0 + 0.003 * k, 0.238)
        wcs.wcs.crpix = [model.nx / 2, model.ny / 2]
        wcs.wcs.set()
        frames.append((image, weight, wcs))
    return frames


def signal_to_noise(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per-pixel S/N of a sky-subtracted coadd whose weight is a relative inverse variance:
    the sky noise (MAD of the covered pixels) scaled by sqrt(median weight / weight)."""
    covered = weight > 0
    noise = 1.4826 * np.median(np.abs(image[covered] - np.median(image[covered])))
    typical = np.median(weight[covered])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(covered, image * np.sqrt(weight / typical) / noise, 0.0)


def bench_coadd(count: int, runs: int, rows: int | None = None, min_snr: float = 10.0) -> None:
    """AWE's Regrid + Coadd against reproject_and_coadd with the same interpolation
    (bilinear for image and weight), the same weights and the same canvas: reproject's
    defaults (``roundtrip_coords=True``) and, as a second baseline, without the round trip.
    Agreement over pixels of S/N > ``min_snr`` where both have the same total weight (AWE
    gives weight 0 where a frame's interpolation touches a bad pixel, reproject mixes the
    bad value in at a partial weight)."""
    from reproject import reproject_interp
    from reproject.mosaicking import reproject_and_coadd

    from awe.science.coadd import coadd
    from awe.science.regrid import cutout_wcs, grid_wcs, regrid

    frames = dithered_frames(count, rows)
    grid = grid_wcs(150.01, -28.99, 0.238)

    def ours():
        parts = [regrid(i, w, c, grid) for i, w, c in frames]
        return coadd([p.image for p in parts], [p.weight for p in parts], [p.offset for p in parts])

    t_ours, mine = best_of(runs, ours)
    canvas = cutout_wcs(grid, mine.offset)

    def theirs(roundtrip: bool):
        return reproject_and_coadd(
            [(i, c) for i, _w, c in frames], canvas, shape_out=mine.image.shape,
            input_weights=[w for _i, w, _c in frames], reproject_function=reproject_interp,
            combine_function="mean", order="bilinear", roundtrip_coords=roundtrip,
        )  # fmt: skip

    size = f"{frames[0][0].shape[1]} x {frames[0][0].shape[0]}"
    print(f"Regrid+Coadd {count} WFI chips of {size} pixels: AWE {t_ours:.2f} s")
    for roundtrip in (True, False):
        t_theirs, (other, weight_sum) = best_of(runs, theirs, roundtrip)
        what = "reproject_and_coadd" + ("" if roundtrip else " (roundtrip_coords=False)")
        print(f"  {what}: {t_theirs:.2f} s; speed-up AWE/reproject: {t_theirs / t_ours:.2f}x")
    snr = signal_to_noise(mine.image, mine.weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        same_weight = np.abs(mine.weight / weight_sum - 1) < 1e-4
        bright = (snr > min_snr) & same_weight & (weight_sum > 0)
        difference = np.abs(mine.image[bright] / other[bright] - 1)
    covered = weight_sum > 0
    print(
        f"  |AWE/reproject - 1| over {bright.sum()} pixels of S/N > {min_snr:g}: "
        f"median {np.median(difference):.1e}, 99th percentile {np.percentile(difference, 99):.1e}, "
        f"max {difference.max():.1e}"
    )
    print(
        f"  pixels with a different total weight (a bad pixel in AWE's stencil): "
        f"{(covered & ~same_weight).sum()} of {covered.sum()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dithers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, help="coadd only the first ROWS rows of each chip")
    parser.add_argument("--coadd-only", action="store_true", help="skip the Reduce figures")
    parser.add_argument("--reduce-only", action="store_true", help="skip Regrid+Coadd")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures as they come, also into a file
    if not args.coadd_only:
        bench_reduce(args.runs)
    if not args.reduce_only:
        bench_coadd(args.dithers, max(1, args.runs - 2), args.rows)


if __name__ == "__main__":
    main()
