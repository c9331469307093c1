"""POGS work-unit generation as pure functions, against small hand-made images and
hand-written expectations: acceptance, areas, the observations file, credit, queue
arithmetic and the redshift rules."""

from __future__ import annotations

import numpy as np

from awe.science import workunits as wu

# Bands in eff_lambda order: FUV, u, g, r, i, W1 (UV, 4 optical, IR).
OPTICAL = np.array([0, 1, 1, 1, 1, 0], bool)
OTHER = np.array([1, 0, 0, 0, 0, 1], bool)


def cube(*pixels: tuple[int, int, list[float]], shape=(3, 4)) -> np.ndarray:
    out = np.zeros((6, *shape), np.float32)
    for y, x, values in pixels:
        out[:, y, x] = values
    return out


def test_acceptance_follows_the_pogs_rule() -> None:
    flux = cube(
        (0, 0, [0, 1, 1, 1, 1, 0]),  # 4 optical: accepted
        (0, 1, [1, 1, 1, 1, 0, 0]),  # 3 optical + UV: accepted
        (0, 2, [0, 0, 1, 1, 1, 1]),  # 3 optical + IR: accepted
        (0, 3, [0, 1, 1, 1, 0, 0]),  # 3 optical alone: refused
        (1, 0, [1, 1, 1, 0, 0, 1]),  # 2 optical + UV + IR: refused
        (1, 1, [0, 1, 1, 1, np.nan, 1]),  # NaN is no data: 3 optical + IR, accepted
        (1, 2, [0, 1, 1, 1, -2, 0]),  # negative flux is no data: refused
    )
    mask = wu.accepted(flux, OPTICAL, OTHER)
    expected = np.zeros((3, 4), bool)
    expected[0, 0] = expected[0, 1] = expected[0, 2] = expected[1, 1] = True
    assert (mask == expected).all()


def test_areas_are_cut_by_column_within_bands_of_rows() -> None:
    mask = np.zeros((5, 6), bool)
    mask[0, 0] = mask[1, 0] = True  # column 0 of band 0: 2 pixels
    mask[2, 1] = True  # column 1: 1 pixel -> 3 reached, the area closes at column 1
    mask[0, 3] = True  # columns 2.. : 1 pixel, band ends: a short area
    mask[3, 4] = mask[4, 4] = mask[3, 5] = True  # band 1 (rows 3-4)
    areas = wu.cut_areas(mask, row_height=3, min_pixels=[3])
    assert [(a.top_x, a.top_y, a.bottom_x, a.bottom_y) for a in areas] == [
        (0, 0, 1, 3),
        (2, 0, 5, 3),
        (0, 3, 5, 5),
    ]
    assert areas[0].pixels == ((0, 0), (0, 1), (1, 2))
    assert areas[1].pixels == ((3, 0),)
    assert areas[2].pixels == ((4, 3), (4, 4), (5, 3))


def test_min_pixels_is_cycled_area_by_area() -> None:
    mask = np.ones((1, 10), bool)
    areas = wu.cut_areas(mask, row_height=1, min_pixels=[2, 3])
    assert [len(a.pixels) for a in areas] == [2, 3, 2, 3]


def test_an_empty_band_makes_no_area() -> None:
    assert wu.cut_areas(np.zeros((4, 4), bool), row_height=2, min_pixels=[1]) == []


EXPECTED_OBSERVATIONS = (
    '#  [{"galaxy": "NGC1", "run_id": 1, "galaxy_id": 7, "area_id": 12, "pixels": 2, '
    '"top_x": 0, "top_y": 0, "bottom_x": 1, "bottom_y": 7}]\n'
    "pix101 0.0300000 0.001  0.0001  -1  -1  2.5e-05  2.5e-06  \n"
    "pix102 0.0300000 -1  -1  0.1  0.01  -1  -1  \n"
)


def test_observations_file_is_byte_exact() -> None:
    f32 = np.float32
    header = {
        "galaxy": "NGC1",
        "run_id": 1,
        "galaxy_id": 7,
        "area_id": 12,
        "pixels": 2,
        "top_x": 0,
        "top_y": 0,
        "bottom_x": 1,
        "bottom_y": 7,
    }
    values = [
        [(f32(0.001), f32(0.0001)), (f32(np.nan), f32(np.nan)), (f32(2.5e-5), f32(2.5e-6))],
        [(f32(0.0), f32(0.0)), (f32(0.1), f32(0.01)), (None, None)],
    ]
    text = wu.observations_text(header, [101, 102], "0.0300000", values)
    assert text == EXPECTED_OBSERVATIONS
    parsed_header, names, flux, sigma = wu.parse_observations(text)
    assert parsed_header == header and names == ["pix101", "pix102"]
    assert flux[0].tolist() == [0.001, 0.0, 2.5e-05] and sigma[1].tolist() == [0.0, 0.01, 0.0]


def test_threshold_and_high_water_mark() -> None:
    assert wu.results_to_add(unsent=1000, threshold=1000, high_water_mark=400) == 0
    assert wu.results_to_add(unsent=1200, threshold=1000, high_water_mark=400) == 0
    assert wu.results_to_add(unsent=900, threshold=1000, high_water_mark=400) == 500
    assert wu.results_to_add(unsent=0, threshold=1000, high_water_mark=400) == 1400


def test_credit_scaling_as_pogs_computes_it() -> None:
    # run: 2 UV, 4 IR, 5 optical; file: 1 UV, 0 IR, 5 optical
    cobblestone, fpops = wu.credit_scaling((2, 4, 5), (1, 0, 5))
    s = 0.02 + 0.048 + 0.05 + 0.015 + 0.0 + 0.075
    assert np.isclose(cobblestone, 1 + s) and np.isclose(fpops, 1 + 0.3 * s)
    estimate, bound, credit = wu.workunit_cost(17, 1.26, 1.82)
    assert estimate == 1.26 * 17 * 1e12 and bound == 50 * estimate and credit == 30.94


def test_redshift_rules() -> None:
    assert wu.fix_redshift("0.0150") == "0.0149"
    assert wu.fix_redshift("0.015") == "0.0149"
    assert wu.fix_redshift("0.0151") == "0.0151"
    assert wu.fix_redshift("0.0181") == "0.0181"
    assert wu.rounded_redshift(0.0149) == "0.0100"
    assert wu.rounded_redshift(0.0151) == "0.0200"
    assert wu.rounded_redshift(0.1249) == "0.1200"
    assert wu.rounded_redshift(0.125) is None
