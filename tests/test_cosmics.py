"""awe.science.cosmics against astroscrappy on scaled-down frames: the same mask, pixel for
pixel, with cosmic rays anywhere (also on the border and in the corners), stars, a
saturated star, bad pixels and a bad column; and the simulator's rays found."""

from __future__ import annotations

import numpy as np
import pytest

from awe.data.sim_chip import cosmic_rays, shot_noise
from awe.science.cosmics import detect_cosmics

GAIN, READ_NOISE, SATURATION = 2.0, 4.5, 60000.0


def frame(seed: int, shape: tuple[int, int] = (300, 260)):
    """(image in ADU, bad-pixel mask, true ray starts): sky, stars of FWHM 3-5 pixels, one
    saturated, Poisson and read noise, the simulator's cosmic rays plus rays on the border."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.indices(shape)
    expected = np.full(shape, 400.0 * GAIN)
    for k in range(40):
        x, y = rng.uniform(0, nx), rng.uniform(0, ny)
        sigma = rng.uniform(3, 5) / 2.355
        flux = 1e7 if k == 0 else 10 ** rng.uniform(3, 6)  # the first one saturates
        expected += (
            flux
            / (2 * np.pi * sigma**2)
            * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        )
    electrons = shot_noise(rng, expected)
    starts = cosmic_rays(rng, electrons, 3e-5, 300.0)
    for y, x in [
        (0, 0),
        (0, nx - 1),
        (ny - 1, 0),
        (ny - 1, nx - 1),
        (1, 50),
        (5, 7),
        (ny - 4, 100),
    ]:
        electrons[y, x] += 5000.0  # on the border and in the corners
    np.minimum(electrons, SATURATION * 1.2, out=electrons)
    image = electrons / GAIN + rng.normal(0, READ_NOISE / GAIN, shape)
    bad = rng.random(shape) < 1e-3
    bad[:, nx // 3] = True
    return image.astype(np.float32), bad, starts


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("niter", [1, 2, 4])
def test_mask_identical_to_astroscrappy(seed: int, niter: int) -> None:
    import astroscrappy

    image, bad, _starts = frame(seed)
    options = dict(sigclip=4.5, gain=GAIN, readnoise=READ_NOISE, satlevel=SATURATION, niter=niter)
    ours = detect_cosmics(image, bad, **options)
    theirs, _clean = astroscrappy.detect_cosmics(
        image, inmask=bad, sepmed=True, cleantype="meanmask", fsmode="median", **options
    )
    assert theirs.sum() > 100  # the frame has cosmic rays to find
    assert np.array_equal(ours, theirs)


def test_mask_identical_without_a_mask_and_at_a_low_threshold() -> None:
    import astroscrappy

    image, _bad, _starts = frame(3, shape=(200, 333))
    options = dict(sigclip=3.0, objlim=2.0, gain=GAIN, readnoise=READ_NOISE, niter=3)
    ours = detect_cosmics(image, **options)
    theirs, _clean = astroscrappy.detect_cosmics(image, sepmed=True, **options)
    assert np.array_equal(ours, theirs)


def test_the_simulated_rays_are_found() -> None:
    image, bad, starts = frame(4)
    hits = detect_cosmics(image, bad, gain=GAIN, readnoise=READ_NOISE, satlevel=SATURATION)
    x, y = np.array(starts).T.astype(int)
    usable = ~bad[y, x]
    assert np.mean(hits[y, x][usable]) > 0.9


def test_mask_identical_with_nan_pixels() -> None:
    import astroscrappy

    image, bad, _starts = frame(5)
    rng = np.random.default_rng(5)
    image[rng.integers(0, image.shape[0], 20), rng.integers(0, image.shape[1], 20)] = np.nan
    options = dict(sigclip=4.5, gain=GAIN, readnoise=READ_NOISE, satlevel=SATURATION, niter=4)
    ours = detect_cosmics(image, bad, **options)
    theirs, _clean = astroscrappy.detect_cosmics(image, inmask=bad, **options)
    assert theirs.sum() > 100
    assert np.array_equal(ours, theirs)
