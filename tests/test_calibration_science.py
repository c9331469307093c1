"""The calibration science functions alone: the clipped stack against ccdproc's combine,
overscan methods against a bias whose structure is known, flats, pixel maps and gain."""

from __future__ import annotations

import numpy as np
import pytest

from awe.science import combine, flat, gain, overscan, pixels, quality


def ccdproc_combine(stack: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """ccdproc's average combine with one pass of median-centred, std sigma clipping."""
    import ccdproc
    from astropy.nddata import CCDData

    frames = [CCDData(plane, unit="adu") for plane in stack]
    return ccdproc.combine(
        frames,
        method="average",
        sigma_clip=True,
        sigma_clip_low_thresh=sigma,
        sigma_clip_high_thresh=sigma,
        sigma_clip_func=np.ma.median,
        sigma_clip_dev_func=np.ma.std,
        mem_limit=2e9,
    ).data


@pytest.mark.parametrize("count", [2, 3, 5, 10, 11])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clipped_mean_equals_ccdproc_combine(count: int, dtype) -> None:
    rng = np.random.default_rng(count)
    stack = rng.normal(300.0, 3.0, (count, 60, 70))
    stack[0, 10, 10] += 5000.0  # a cosmic ray
    stack[:, 20, 20] += rng.normal(0, 40.0, count)  # a noisy pixel
    expected = ccdproc_combine(stack)
    result = combine.clipped_mean(stack.astype(dtype), 3.0, block_pixels=500)
    assert result.image.dtype == dtype
    np.testing.assert_allclose(result.image, expected, rtol=1e-5)
    if count >= 10:  # one pass of 3 sigma rejects a lone outlier only in a deep enough stack
        assert result.image[10, 10] == pytest.approx(300.0, abs=3.0)
        assert result.rejected >= 1


def test_sorting_network_sorts_every_small_stack() -> None:
    rng = np.random.default_rng(0)
    for n in range(1, 20):
        values = rng.normal(size=(n, 40))
        planes = [row.copy() for row in values]
        np.testing.assert_array_equal(np.array(combine.sort_planes(planes)), np.sort(values, 0))
        np.testing.assert_array_equal(
            combine.median_of_planes([row.copy() for row in values]), np.median(values, 0)
        )


def test_flat_combine_equals_ccdproc_with_median_scaling() -> None:
    rng = np.random.default_rng(5)
    response = 1 + 0.01 * rng.standard_normal((80, 90))
    levels = np.array([20000.0, 18000.0, 25000.0, 22000.0, 15000.0])
    stack = levels[:, None, None] * response[None] + rng.normal(0, 100, (5, 80, 90))
    # ccdproc clips the unscaled frames (its scale= applies to the average only), so it
    # gets the flats already divided by their medians, as combine_flats divides them
    expected = ccdproc_combine(stack / np.median(stack, axis=(1, 2), keepdims=True))
    expected /= np.median(expected)
    combined, measured = flat.combine_flats(stack.copy())
    np.testing.assert_allclose(combined.image, expected, rtol=1e-5)
    np.testing.assert_allclose(measured, np.median(stack, axis=(1, 2)))


def synthetic_raw(rows: int = 200) -> tuple[np.ndarray, list[overscan.Region], np.ndarray]:
    """A raw frame with a prescan, data and an overscan, a row-dependent bias level."""
    rng = np.random.default_rng(3)
    level = 500 + 5 * np.exp(-np.arange(rows) / 10.0) + 0.5 * np.sin(np.arange(rows) / 20.0)
    raw = level[:, None] + rng.normal(0, 2.0, (rows, 10 + 100 + 40))
    raw[:, 10:110] += 1000.0
    region = overscan.Region(
        data=(slice(0, rows), slice(10, 110)),
        overscan=(slice(0, rows), slice(110, 150)),
        prescan=(slice(0, rows), slice(0, 10)),
    )
    return raw, [region], level


@pytest.mark.parametrize("method", sorted(overscan.METHODS))
def test_every_overscan_method_takes_the_bias_level_away(method: int) -> None:
    raw, regions, level = synthetic_raw()
    trimmed = overscan.correct(raw, regions, method)
    assert trimmed.shape == (200, 100) and trimmed.dtype == np.float32
    if method == 0:
        assert np.mean(trimmed) == pytest.approx(1000 + level.mean(), abs=0.1)
    else:
        assert np.mean(trimmed) == pytest.approx(1000.0, abs=1.0)
    if method in (5, 6, 7, 8, 9):  # per row: the row structure goes too
        residual = trimmed.mean(axis=1) - 1000.0
        assert np.std(residual[20:]) < 0.5


def test_overscan_errors_say_what_would_work() -> None:
    raw, regions, _ = synthetic_raw()
    with pytest.raises(ValueError, match="unknown; choose one of 0 .no overscan correction"):
        overscan.correct(raw, regions, 11)
    no_prescan = [overscan.Region(data=regions[0].data, overscan=regions[0].overscan)]
    with pytest.raises(ValueError, match="needs a prescan.*use method 2, 5 or 6"):
        overscan.correct(raw, no_prescan, 4)


def test_master_flat_takes_small_scales_from_the_dome_and_large_from_the_sky() -> None:
    rng = np.random.default_rng(8)
    y, x = np.mgrid[0:256, 0:128]
    pixel = 1 + 0.01 * rng.standard_normal((256, 128))
    vignetting = 1 - 0.05 * ((x - 64) ** 2 + (y - 128) ** 2) / 128**2
    dome = pixel * (1 + 0.03 * x / 128)  # the lamp adds a gradient
    sky = vignetting * pixel + 0.002 * rng.standard_normal((256, 128))
    dome = dome * vignetting
    result, _correction = flat.master_flat(dome.astype(np.float32), sky.astype(np.float32), 32)
    assert flat.shape_rms(result, pixel * vignetting) < 0.002


def test_pixel_maps_find_hot_and_cold_pixels() -> None:
    rng = np.random.default_rng(9)
    bias = rng.normal(0, 1.0, (300, 200)).astype(np.float32)
    bias[5, 7] = 400.0
    good, facts = pixels.hot_pixel_map(bias, 10.0)
    assert good.dtype == np.uint8 and good[5, 7] == 0 and facts["bad"] == 1
    flat_image = (1 + 0.01 * rng.standard_normal((300, 200))).astype(np.float32)
    flat_image[100, 50] = 0.3
    flat_image[200, 150] = 1.5
    good, facts = pixels.cold_pixel_map(flat_image, 0.8, 1.2, 32)
    assert good[100, 50] == 0 and good[200, 150] == 0 and facts["bad"] == 2
    with pytest.raises(ValueError, match="0 < low < 1 < high"):
        pixels.cold_pixel_map(flat_image, 1.1, 1.2)


def test_photon_transfer_recovers_gain_and_linearity() -> None:
    rng = np.random.default_rng(11)
    true_gain, k = 2.3, -4e-7  # e-/ADU; signal = s + k s^2 (ADU)
    points = []
    for seconds in (1.0, 2.0, 4.0, 6.0, 8.0):
        linear = 3000.0 * seconds
        measured = linear + k * linear**2
        slope = 1 + 2 * k * linear
        frames = [
            measured
            + slope * rng.normal(0, np.sqrt(linear / true_gain), (200, 200))
            + rng.normal(0, 2.0, (200, 200))
            for _ in range(2)
        ]
        points.append(gain.pair_point(*[f.astype(np.float32) for f in frames], seconds))
    fit = gain.fit_gain(points)
    assert fit.gain == pytest.approx(true_gain, rel=0.01)
    assert fit.linearity == pytest.approx(k, rel=0.05)


def test_bias_checks_report_value_and_limit() -> None:
    rng = np.random.default_rng(12)
    bias = rng.normal(0.5, 2.0, (128, 128))
    limits = {
        "MAXIMUM_ABS_MEAN": 10.0,
        "MAXIMUM_STDEV": 1.0,
        "MAXIMUM_STDEV_DIFFERENCE": 10.0,
        "MAXIMUM_SUBWIN_FLATNESS": 1e5,
        "MAXIMUM_SUBWIN_STDEV": 1e5,
    }
    checks = {c.name: c for c in quality.bias_checks(bias, limits, previous_stdev=2.1)}
    assert checks["MAXIMUM_ABS_MEAN"].passed
    assert not checks["MAXIMUM_STDEV"].passed
    assert checks["MAXIMUM_STDEV"].value == pytest.approx(2.0, rel=0.05)
    assert checks["MAXIMUM_STDEV"].describe().startswith("MAXIMUM_STDEV: 1.9")
    assert "(limit 1) FAILED" in checks["MAXIMUM_STDEV"].describe()
    assert "MAXIMUM_ABS_MEAN" not in {
        c.name for c in quality.bias_checks(bias, limits, overscan_corrected=False)
    }


def test_photon_transfer_from_pairs_at_one_level() -> None:
    """Flats of one lamp level (pairs whose means differ by a few ADU) give the gain from
    the ratio of signal to variance; no line is fitted through nearly equal signals."""
    rng = np.random.default_rng(13)
    true_gain = 2.0
    points = []
    for _ in range(2):
        signal = 20000.0 + rng.normal(0, 1.0)
        frames = [signal + rng.normal(0, np.sqrt(signal / true_gain), (200, 200)) for _ in range(2)]
        points.append(gain.pair_point(*[f.astype(np.float32) for f in frames], 8.0))
    fit = gain.fit_gain(points, 40000.0)
    assert fit.gain == pytest.approx(true_gain, rel=0.01)
    assert fit.linearity == 0.0
